"""The one Twilio configuration: sending (SMS, calls), the webhook receiver's signature check
and the status poller all read it here.

Resolved once per use, in this order: the Prefect block named by ``DUNNING_TWILIO_BLOCK``
(``dunning.channels.blocks.TwilioCredentials``), else the environment: ``DUNNING_TWILIO_*``,
with Twilio's conventional ``TWILIO_ACCOUNT_SID`` / ``TWILIO_AUTH_TOKEN`` /
``TWILIO_FROM_NUMBER`` as fallbacks (``dunning.config.channels.ChannelSettings``).
"""

from __future__ import annotations

from pydantic import BaseModel, SecretStr

from dunning.config import get_settings
from dunning.config.channels import ChannelSettings
from dunning.errors import ConfigError

MISSING = (
    "set DUNNING_TWILIO_ACCOUNT_SID and DUNNING_TWILIO_AUTH_TOKEN (or TWILIO_ACCOUNT_SID/"
    "TWILIO_AUTH_TOKEN, or DUNNING_TWILIO_BLOCK)"
)


class TwilioConfig(BaseModel):
    """A Twilio account as every part uses it (the auth token stays a SecretStr)."""

    account_sid: str
    auth_token: SecretStr
    from_number: str | None = None
    messaging_service_sid: str | None = None
    base_url: str = "https://api.twilio.com"
    timeout_seconds: float = 10.0
    status_callback_url: str | None = None


def twilio_configured(settings: ChannelSettings | None = None) -> bool:
    """Whether a Twilio account is configured (a block named, or SID and token set)."""
    s = settings or get_settings().channels
    return bool(s.twilio_block or (s.twilio_account_sid and s.twilio_auth_token))


def twilio_config(settings: ChannelSettings | None = None) -> TwilioConfig | None:
    """The Twilio configuration (see the module docstring), None when none is configured.

    Raises ConfigError when DUNNING_TWILIO_BLOCK names a block that cannot be loaded.
    """
    s = settings or get_settings().channels
    if s.twilio_block:
        from dunning.channels import _load_block
        from dunning.channels.blocks import TwilioCredentials

        b = _load_block(TwilioCredentials, s.twilio_block)
        return TwilioConfig(
            account_sid=b.account_sid,
            auth_token=b.auth_token,
            from_number=b.from_number,
            messaging_service_sid=b.messaging_service_sid,
            base_url=b.base_url,
            timeout_seconds=b.timeout_seconds,
            status_callback_url=b.status_callback_url or s.twilio_status_callback_url,
        )
    if not s.twilio_account_sid or s.twilio_auth_token is None:
        return None
    return TwilioConfig(
        account_sid=s.twilio_account_sid,
        auth_token=s.twilio_auth_token,
        from_number=s.twilio_from_number,
        messaging_service_sid=s.twilio_messaging_service_sid,
        base_url=s.twilio_base_url,
        timeout_seconds=s.provider_timeout_seconds,
        status_callback_url=s.twilio_status_callback_url,
    )


def twilio_auth_token(settings: ChannelSettings | None = None) -> SecretStr | None:
    """The auth token that signs Twilio's webhooks, from the same configuration, None when
    unset. Verifying a request needs only the token (Twilio's RequestValidator), so a receiver
    configured with the token alone verifies, as it always did; the account SID is for sending.

    Raises ConfigError when DUNNING_TWILIO_BLOCK names a block that cannot be loaded.
    """
    s = settings or get_settings().channels
    config = twilio_config(s)
    return config.auth_token if config is not None else s.twilio_auth_token


def require_twilio(
    settings: ChannelSettings | None = None, purpose: str = "Twilio"
) -> TwilioConfig:
    """:func:`twilio_config`, or ConfigError naming ``purpose`` and what to set."""
    config = twilio_config(settings)
    if config is None:
        raise ConfigError(f"{purpose} needs Twilio credentials: {MISSING}")
    return config

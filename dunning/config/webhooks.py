"""Settings of the webhook receiver and the tracking flow (DUNNING_* environment variables;
the ``webhooks`` section of the settings root, ``get_settings().webhooks``).

Twilio's account (the auth token that signs callbacks, the SID and base URL the poller uses)
is not here: every part reads it from ``dunning.channels.twilio_config``, as sending does.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebhookSettings(BaseSettings):
    """Secrets, limits and URLs of the webhook receiver and of response tracking."""

    model_config = SettingsConfigDict(env_prefix="DUNNING_", extra="ignore")

    webhook_public_url: str | None = Field(
        default=None,
        description=(
            "Public base URL Twilio calls (e.g. https://hooks.example.com). Behind a proxy the "
            "local URL differs from the one Twilio signed; unset means the request's own URL."
        ),
    )
    sendgrid_webhook_public_key: str | None = Field(
        default=None, description="SendGrid Signed Event Webhook verification key (base64 DER)."
    )
    stripe_webhook_secret: SecretStr | None = None
    webhook_tolerance_seconds: int = Field(default=300, ge=1)
    webhook_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    webhook_event_seconds: float = Field(
        default=30.0,
        ge=-1,
        description="Debounce window of the dunning.webhook.received Prefect event that "
        "triggers track-responses: at most one event per window, carrying counts only. "
        "0 = one event per request that stored something; -1 = never emit.",
    )
    reply_pause_days: int = Field(default=14, ge=0)
    twilio_poll_age_minutes: int = Field(default=30, ge=0)
    inbox_max_attempts: int = Field(
        default=5,
        ge=0,
        description="Automatic applications of an inbox row in error before "
        "it waits for `dunning inbox retry` (0 = never retried automatically).",
    )
    inbox_retry_base_seconds: int = Field(
        default=300,
        ge=1,
        description="First retry delay of an inbox row in error; doubles after each failure.",
    )

"""Delivery settings: provider credentials, base URLs, sender identity, rate limits
(the ``channels`` section of the settings root, ``get_settings().channels``).

Read from DUNNING_* environment variables; the providers' conventional names
(SENDGRID_API_KEY, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER) are accepted as
a fallback.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
EmailProvider = Literal["auto", "sendgrid", "smtp", "outbox"]
#: Development defaults of the one-click unsubscribe link: fine for the outbox, refused by a run
#: that sends real e-mail (a known secret lets anyone unsubscribe anyone; the example URL
#: reaches no receiver, so every unsubscribe click would be lost).
DEV_UNSUBSCRIBE_SECRET = "dunning-dev-unsubscribe-secret"  # noqa: S105 (public by design)
EXAMPLE_UNSUBSCRIBE_BASE_URL = "https://example.com/unsubscribe"
SmsProvider = Literal["auto", "twilio", "outbox"]
VoiceProvider = Literal["auto", "twilio", "outbox"]
MachineDetection = Literal["DetectMessageEnd", "Enable"]


def _env(name: str, *fallbacks: str) -> AliasChoices:
    # With explicit aliases pydantic-settings ignores env_prefix, so the DUNNING_ name is listed.
    return AliasChoices(f"DUNNING_{name}", *fallbacks)


class ChannelSettings(BaseSettings):
    """Everything the channels and message composition read from the environment."""

    model_config = SettingsConfigDict(env_prefix="DUNNING_", extra="ignore", populate_by_name=True)

    email_provider: EmailProvider = "auto"
    sms_provider: SmsProvider = "auto"
    provider_timeout_seconds: float = Field(default=10.0, gt=0)
    send_concurrency: int = Field(default=4, ge=1, description="Threads per batch.")
    compose_processes: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="Worker processes composing a delivery batch's messages (0: compose in "
        "the delivery threads; unset: one less than the CPUs, see dunning.render.processes).",
    )
    email_rate_limit: float = Field(default=0.0, ge=0, description="Messages/s; 0 = unlimited.")
    sms_rate_limit: float = Field(default=0.0, ge=0, description="Messages/s; 0 = unlimited.")
    voice_provider: VoiceProvider = "auto"
    voice_rate_limit: float = Field(default=0.0, ge=0, description="Calls/s; 0 = unlimited.")

    # SendGrid
    sendgrid_api_key: SecretStr | None = Field(
        default=None, validation_alias=_env("SENDGRID_API_KEY", "SENDGRID_API_KEY")
    )
    sendgrid_base_url: str = Field(
        default="https://api.sendgrid.com", validation_alias=_env("SENDGRID_BASE_URL")
    )
    sendgrid_block: str | None = Field(default=None, validation_alias=_env("SENDGRID_BLOCK"))

    # Twilio
    twilio_account_sid: str | None = Field(
        default=None, validation_alias=_env("TWILIO_ACCOUNT_SID", "TWILIO_ACCOUNT_SID")
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None, validation_alias=_env("TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN")
    )
    twilio_from_number: str | None = Field(
        default=None, validation_alias=_env("TWILIO_FROM_NUMBER", "TWILIO_FROM_NUMBER")
    )
    twilio_messaging_service_sid: str | None = Field(
        default=None, validation_alias=_env("TWILIO_MESSAGING_SERVICE_SID")
    )
    twilio_base_url: str = Field(
        default="https://api.twilio.com", validation_alias=_env("TWILIO_BASE_URL")
    )
    twilio_status_callback_url: str | None = Field(
        default=None, validation_alias=_env("TWILIO_STATUS_CALLBACK_URL")
    )
    twilio_block: str | None = Field(default=None, validation_alias=_env("TWILIO_BLOCK"))

    # Voice reminders (Twilio Calls)
    voice_from_number: str | None = Field(
        default=None, description="Caller ID (E.164); default DUNNING_TWILIO_FROM_NUMBER."
    )
    voice_support_number: str | None = Field(
        default=None, description="Number (E.164) a customer reaches by pressing 3 (<Dial>)."
    )
    voice_machine_detection: MachineDetection = Field(
        default="DetectMessageEnd",
        description="Twilio answering-machine detection: DetectMessageEnd waits for the beep "
        "so the voicemail is recorded whole; Enable answers faster.",
    )
    voice_ring_timeout_seconds: int = Field(
        default=30, ge=5, le=600, description="How long a call rings before no-answer."
    )
    webhook_public_url: str | None = Field(
        default=None,
        description="Public base URL of the webhook receiver: calls fetch their TwiML from "
        "<url>/webhooks/twilio/voice and report outcomes to <url>/webhooks/twilio/status.",
    )

    # SMTP
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_ssl: bool = False
    smtp_block: str | None = None

    # Sender identity and compliance
    email_from: str = "billing@example.com"
    email_from_name: str | None = None
    email_reply_to: str | None = None
    postal_address: str = "1 Example Street, 12345 Springfield"
    unsubscribe_base_url: str = Field(
        default=EXAMPLE_UNSUBSCRIBE_BASE_URL,
        description="Public URL of the receiver's /unsubscribe path (one-click links).",
    )
    unsubscribe_mailto: str | None = Field(
        default=None, description="Address for mailto: List-Unsubscribe; default email_from."
    )
    unsubscribe_secret: SecretStr = SecretStr(DEV_UNSUBSCRIBE_SECRET)
    sms_max_segments: int = Field(default=2, ge=1)
    sms_opt_out_hint: bool = True
    templates_dir: str | None = Field(
        default=None,
        description="Default: the templates shipped in the package (dunning/templates/).",
    )
    # Branding of the HTML email (docs/delivery.md): a logo above the message, the colour of
    # the pay button, the summary's accent and the top rule.
    email_logo_url: str | None = Field(
        default=None, description="https URL of a logo image shown at the top of HTML emails."
    )
    email_brand_color: str = Field(
        default="#1a73e8", description="Brand colour of HTML emails, hex #RRGGBB or #RGB."
    )

    @field_validator("email_logo_url")
    @classmethod
    def _https_logo(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.netloc or any(c in value for c in " \"<>'"):
            raise ValueError(
                f"DUNNING_EMAIL_LOGO_URL must be an https:// URL of an image (mail clients "
                f"block http images and other schemes), got {value!r}"
            )
        return value

    @field_validator("email_brand_color")
    @classmethod
    def _hex_color(cls, value: str) -> str:
        value = value.strip()
        if not _HEX_COLOR.fullmatch(value):
            raise ValueError(
                f"DUNNING_EMAIL_BRAND_COLOR must be a hex colour such as #1a73e8 or #17e, "
                f"got {value!r}"
            )
        return value.lower()


def unsubscribe_problems(settings: ChannelSettings) -> list[str]:
    """What keeps one-click unsubscribe from working with real e-mail: each item names the
    setting still at its development default and what to set (empty when both are set)."""
    problems = []
    if settings.unsubscribe_secret.get_secret_value() == DEV_UNSUBSCRIBE_SECRET:
        problems.append(
            "DUNNING_UNSUBSCRIBE_SECRET is the development default; set a long random secret "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    if settings.unsubscribe_base_url.rstrip("/") == EXAMPLE_UNSUBSCRIBE_BASE_URL:
        problems.append(
            "DUNNING_UNSUBSCRIBE_BASE_URL is the example URL; set the public URL of the "
            "receiver's /unsubscribe path, e.g. https://hooks.yourcompany.com/unsubscribe"
        )
    return problems

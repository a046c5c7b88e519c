"""Prefect blocks holding provider credentials (secrets stay SecretStr: never logged or shown).

Register once with ``prefect block register -m dunning.channels.blocks``, save a block in the
UI or in code, and point the factory at it with DUNNING_SENDGRID_BLOCK / DUNNING_TWILIO_BLOCK /
DUNNING_SMTP_BLOCK.
"""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class SendGridCredentials(Block):
    """SendGrid API key and endpoint."""

    _block_type_name = "Dunning SendGrid Credentials"
    _block_type_slug = "dunning-sendgrid-credentials"

    api_key: SecretStr = Field(description="API key with the mail.send scope.")
    base_url: str = Field(default="https://api.sendgrid.com")
    timeout_seconds: float = Field(default=10.0, gt=0)


class TwilioCredentials(Block):
    """Twilio account, sender and endpoint."""

    _block_type_name = "Dunning Twilio Credentials"
    _block_type_slug = "dunning-twilio-credentials"

    account_sid: str
    auth_token: SecretStr
    from_number: str | None = Field(default=None, description="E.164 sender number.")
    messaging_service_sid: str | None = None
    base_url: str = Field(default="https://api.twilio.com")
    timeout_seconds: float = Field(default=10.0, gt=0)
    status_callback_url: str | None = None


class SmtpCredentials(Block):
    """SMTP relay (Gmail, Outlook/Office 365, your MTA)."""

    _block_type_name = "Dunning SMTP Credentials"
    _block_type_slug = "dunning-smtp-credentials"

    host: str
    port: int = 587
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = True
    ssl: bool = False
    timeout_seconds: float = Field(default=10.0, gt=0)

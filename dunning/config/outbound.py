"""Outbound event delivery settings (DUNNING_OUTBOUND_*)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class OutboundSettings(BaseSettings):
    """Outbound event delivery (DUNNING_OUTBOUND_*)."""

    model_config = SettingsConfigDict(env_prefix="DUNNING_OUTBOUND_", extra="ignore")

    webhook_url: str | None = Field(default=None, description="One subscriber's URL.")
    webhook_secret: SecretStr | None = Field(default=None, description="Its whsec_ secret.")
    max_attempts: int = Field(default=10, ge=1, description="Attempts before dead letter.")
    backoff_seconds: float = Field(default=30, ge=0, description="First retry delay; doubles.")
    timeout_seconds: float = Field(default=10, gt=0, description="Per request.")

    @property
    def secret_value(self) -> str | None:
        """The DUNNING_OUTBOUND_WEBHOOK_SECRET text, or None when unset (never log it)."""
        return self.webhook_secret.get_secret_value() if self.webhook_secret else None

"""Retention settings of the data-protection flow (DUNNING_RETENTION_*)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PrivacySettings(BaseSettings):
    """How long message bodies and raw webhook payloads are kept (DUNNING_RETENTION_*)."""

    model_config = SettingsConfigDict(env_prefix="DUNNING_", extra="ignore")

    retention_body_days: int = Field(
        default=90, ge=0, description="Days a sent message's subject and body are kept."
    )
    retention_payload_days: int = Field(
        default=30, ge=0, description="Days an applied webhook payload is kept."
    )

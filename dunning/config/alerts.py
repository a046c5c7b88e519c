"""Where operator alerts go and their thresholds (DUNNING_ALERT_*); the automations built
from them are :mod:`dunning.alerts`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AlertSettings(BaseSettings):
    """Where operator alerts go and their thresholds (DUNNING_ALERT_*); seconds throughout."""

    model_config = SettingsConfigDict(env_prefix="DUNNING_ALERT_", extra="ignore")

    failure_rate: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="A batch whose failed/(sent+failed) exceeds this emits "
        "dunning.batch.failure-rate-exceeded.",
    )
    block: str | None = Field(
        default=None,
        description="Prefect notification block to alert through, as <block-type-slug>/<name>.",
    )
    webhook_url: str | None = Field(
        default=None,
        description="URL the 'dunning-operator' webhook block posts to when no block is named.",
    )
    zombie_seconds: int = Field(
        default=600,
        ge=60,
        le=86_400,
        description="A running flow run with no heartbeat for this long is crashed. Keep it at "
        "least twice PREFECT_FLOWS_HEARTBEAT_FREQUENCY of the workers (Prefect's minimum "
        "frequency is 30 s, hence the minimum of 60).",
    )
    pending_seconds: int = Field(
        default=600,
        ge=30,
        le=86_400,
        description="Notify when a flow run stays Pending (submitted, never started) this long.",
    )
    slot_wait_seconds: int = Field(
        default=1800,
        ge=30,
        le=86_400,
        description="Notify when a flow run waits this long in AwaitingConcurrencySlot.",
    )
    no_completed_seconds: int = Field(
        default=7200,
        ge=60,
        le=7 * 86_400,
        description="Notify when no payment-reminders run completed for this long.",
    )

"""Flow-run timeouts in seconds, per flow (DUNNING_FLOW_TIMEOUT_<FLOW>); why every flow has
one: :mod:`dunning.timeouts`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FlowTimeouts(BaseSettings):
    """Flow-run timeouts in seconds, per flow."""

    model_config = SettingsConfigDict(env_prefix="DUNNING_FLOW_TIMEOUT_", extra="ignore")

    payment_reminders: int = Field(
        default=3300,
        ge=60,
        le=7 * 86_400,
        description="55 minutes: a reminder run ends before the next hourly one is due.",
    )
    reminders_dry_run: int = Field(
        default=1800, ge=60, le=86_400, description="30 minutes for a preview run."
    )
    track_responses: int = Field(
        default=840, ge=60, le=86_400, description="14 minutes: before the next 15-minute run."
    )
    operator_action: int = Field(
        default=300, ge=60, le=86_400, description="5 minutes for one operator action."
    )
    retention: int = Field(default=3600, ge=60, le=86_400, description="One hour, nightly.")
    outbound_events: int = Field(
        default=240, ge=60, le=86_400, description="4 minutes: before the next 5-minute run."
    )
    sync_sources: int = Field(
        default=540, ge=60, le=86_400, description="9 minutes: before the next 10-minute sync."
    )
    collections_report: int = Field(
        default=1800, ge=60, le=86_400, description="30 minutes for the weekly report."
    )
    segment_customers: int = Field(
        default=1800, ge=60, le=86_400, description="30 minutes for the daily segmentation."
    )

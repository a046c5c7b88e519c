"""When a reminder run pauses for approval (DUNNING_APPROVAL_*); the rule itself is
:mod:`dunning.approval`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApprovalSettings(BaseSettings):
    """When a reminder run pauses for approval (DUNNING_APPROVAL_*).

    Off by default (the CLI and notebooks never wait for a person); the production
    environment (deployments/environments/production.toml) turns it on.
    """

    model_config = SettingsConfigDict(env_prefix="DUNNING_APPROVAL_", extra="ignore")

    enabled: bool = Field(
        default=False, description="Pause a reminder run for approval before it sends."
    )
    final_notice: bool = Field(
        default=True, description="Ask for approval whenever a final notice is about to go out."
    )
    max_messages: int = Field(
        default=500,
        ge=0,
        description="Ask for approval when a run is about to send more than this many messages.",
    )
    timeout_seconds: int = Field(
        default=1800,
        ge=60,
        le=86_400,
        description="How long a run waits for a decision; no decision = rejected, nothing sent. "
        "Keep it below the flow timeout (DUNNING_FLOW_TIMEOUT_*).",
    )

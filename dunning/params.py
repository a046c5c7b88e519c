"""The reminder flow's parameters: one pydantic model, so the Prefect UI renders a form and
invalid values are refused before a run starts."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from dunning.sharding import MAX_SHARDS


class ChannelName(StrEnum):
    email = "email"
    sms = "sms"
    voice = "voice"


class StageName(StrEnum):
    pre_due = "pre_due"
    due = "due"
    overdue_1 = "overdue_1"
    overdue_2 = "overdue_2"
    final_notice = "final_notice"
    payment_failed = "payment_failed"
    promise_broken = "promise_broken"


class RunParameters(BaseModel):
    """What one reminder run does."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    as_of: dt.datetime | None = Field(
        default=None,
        description="The instant the run acts as of (UTC if no offset); empty = now. "
        "Re-running with the same as_of sends nothing new.",
    )
    dry_run: bool = Field(default=False, description="Plan and report only; send nothing.")
    channels: list[ChannelName] | None = Field(
        default=None, description="Only these channels; empty = all."
    )
    segments: list[str] | None = Field(
        default=None, description="Only customers in these segments; empty = all."
    )
    stages: list[StageName] | None = Field(
        default=None, description="Only these stages (repeats count as final_notice)."
    )
    invoice_numbers: list[str] | None = Field(
        default=None, description="Only these invoices; empty = the whole portfolio."
    )
    batch_size: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Reminders per delivery task. Empty: one task per invoice while the run "
        "has at most max_tasks invoices, else batches sized to stay within max_tasks. A "
        "number is raised automatically when needed to stay within max_tasks.",
    )
    max_tasks: int = Field(
        default=200, ge=1, le=2_000, description="Most delivery tasks a run creates."
    )
    concurrency: int = Field(default=4, ge=1, le=64, description="Delivery tasks running at once.")
    max_messages: int | None = Field(
        default=None,
        ge=0,
        description="Send at most this many messages in this run; the rest wait for the next run.",
    )
    policy_path: Path | None = Field(
        default=None, description="Policy file (TOML/YAML); empty = the configured default."
    )
    shards: int = Field(
        default=1,
        ge=1,
        le=MAX_SHARDS,
        description="Split the run into this many shards by customer (crc32 of the customer "
        "id modulo shards). 1 = one run as usual. Above 1 with shard empty, this run "
        "coordinates: it starts one run per shard (on the work pool when run from a "
        "deployment, else in this process), waits for all and reports their sum; "
        "max_messages is split evenly across the shards.",
    )
    shard: int | None = Field(
        default=None,
        ge=0,
        description="Handle only this shard (0 .. shards-1): the customers whose shard key "
        "modulo shards is this number. Empty = all customers (or coordinate, if shards > 1).",
    )
    shard_deployment: str | None = Field(
        default=None,
        description="Deployment that runs the shards, as flow/deployment. Empty: "
        "payment-reminders/payment-reminders-shard when it exists, else this run's own "
        "deployment; outside a deployment the shards run in this process.",
    )

    @field_validator("as_of")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    @field_validator("shard")
    @classmethod
    def _below_shards(cls, value: int | None, info: ValidationInfo) -> int | None:
        shards = info.data.get("shards")
        if value is not None and shards is not None and value >= shards:
            raise ValueError(
                f"shard {value} is not below shards {shards}: shards are numbered 0 to "
                f"shards-1; set shard to 0..{shards - 1}, or shards to {value + 1} or more"
            )
        return value

    @field_validator("shard_deployment")
    @classmethod
    def _flow_slash_deployment(cls, value: str | None) -> str | None:
        if value is not None and (value.count("/") != 1 or "" in value.split("/")):
            raise ValueError(
                f"shard_deployment {value!r} is not <flow>/<deployment>; "
                "e.g. payment-reminders/payment-reminders-shard (see `prefect deployment ls`)"
            )
        return value

    @field_validator("policy_path")
    @classmethod
    def _exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"policy file {value} does not exist")
        return value

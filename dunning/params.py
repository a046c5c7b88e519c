"""The reminder flow's parameters.

The flows take them flat, one top-level parameter each (the Prefect convention), so a run that
overrides one keeps every other default of its deployment. Each parameter's type is one of the
annotated types below: they give the flow's JSON schema its bounds, enums and patterns, which
the Prefect server enforces before a run is created (``enforce_parameter_schema``), and the
same types make up ``RunParameters``, the model that checks the rules across parameters
(shard below shards, the policy file exists) once the run starts.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dunning.sharding import MAX_SHARDS

#: An ISO 8601 instant as the flows accept it: a date, optionally a time (minutes, seconds,
#: fractions) and an offset (``Z`` or ±HH:MM). The server enforces it, since the JSON-schema
#: ``format: date-time`` alone is not checked by Prefect's parameter validation.
ISO_INSTANT_PATTERN = (
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|z|[+-]\d{2}:?\d{2})?)?$"
)
_ISO_INSTANT = re.compile(ISO_INSTANT_PATTERN)


def _iso_instant(value: Any) -> Any:
    """``value`` unchanged; raises ValueError for a string that is not an ISO 8601 instant."""
    if isinstance(value, str) and not _ISO_INSTANT.match(value):
        raise ValueError(
            f"as_of {value!r} is not an ISO 8601 instant; write e.g. 2026-11-30T15:00:00Z "
            "(UTC) or 2026-11-30T16:00:00+01:00"
        )
    return value


class ChannelName(StrEnum):
    email = "email"
    sms = "sms"
    voice = "voice"


AsOf = Annotated[
    dt.datetime | None,
    BeforeValidator(_iso_instant),
    Field(
        description="The instant the run acts as of, ISO 8601 (UTC if no offset), e.g. "
        "2026-11-30T15:00:00Z; empty = now. Re-running with the same as_of sends nothing new.",
        json_schema_extra={"pattern": ISO_INSTANT_PATTERN},
    ),
]
DryRun = Annotated[bool, Field(description="Plan and report only; send nothing.")]
# Why tuples with an empty default rather than an optional list: the UI then shows the
# allowed values at once, without a "None" toggle to switch first.
Channels = Annotated[
    tuple[ChannelName, ...], Field(description="Only these channels; empty = all.")
]
Segments = Annotated[
    tuple[str, ...], Field(description="Only customers in these segments; empty = all.")
]
# Stage names come from the run's policy (a custom ladder names its own stages), so they are
# checked against the loaded policy when the run starts (RunParameters), not by an enum here.
Stages = Annotated[
    tuple[str, ...],
    Field(
        description="Only these stages, by their names in the run's policy (repeats count "
        "as the final stage); empty = all."
    ),
]
InvoiceNumbers = Annotated[
    tuple[str, ...], Field(description="Only these invoices; empty = the whole portfolio.")
]
BatchSize = Annotated[
    int | None,
    Field(
        ge=1,
        le=10_000,
        description="Reminders per delivery task. Empty: one task per invoice while the run "
        "has at most max_tasks invoices, else batches of 500 (smaller when that would leave "
        "fewer batches than concurrency). A number is raised automatically when needed to "
        "stay within max_tasks.",
    ),
]
MaxTasks = Annotated[int, Field(ge=1, le=2_000, description="Most delivery tasks a run creates.")]
#: The most delivery tasks a run may have running at once; the flow's thread pool has this
#: many workers, so the ``concurrency`` parameter, not the pool, is what limits a run.
MAX_CONCURRENCY = 64
Concurrency = Annotated[
    int, Field(ge=1, le=MAX_CONCURRENCY, description="Delivery tasks running at once.")
]
MaxMessages = Annotated[
    int | None,
    Field(
        ge=0,
        description="Send at most this many messages in this run; the rest wait for the next "
        "run. Empty = no cap.",
    ),
]
PolicyPath = Annotated[
    Path | None,
    Field(description="Policy file (TOML/YAML); empty = the configured default."),
]
Shards = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_SHARDS,
        description="Split the run into this many shards by customer (crc32 of the customer "
        "id modulo shards). 1 = one run as usual. Above 1 with shard empty, this run "
        "coordinates: it starts one run per shard (on the work pool when run from a "
        "deployment, else in this process), waits for all and reports their sum; "
        "max_messages is split evenly across the shards.",
    ),
]
Shard = Annotated[
    int | None,
    Field(
        ge=0,
        description="Handle only this shard (0 .. shards-1): the customers whose shard key "
        "modulo shards is this number. Empty = all customers (or coordinate, if shards > 1).",
    ),
]
ShardDeployment = Annotated[
    str | None,
    Field(
        description="Deployment that runs the shards, as flow/deployment. Empty: "
        "payment-reminders/payment-reminders-shard when it exists, else this run's own "
        "deployment; outside a deployment the shards run in this process.",
    ),
]


class RunParameters(BaseModel):
    """What one reminder run does: the flows' flat parameters, checked together.

    Raises pydantic.ValidationError naming the parameter: out of bounds, an unknown field, a
    shard not below shards, a policy file that does not exist, an as_of not ISO 8601.
    """

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    as_of: AsOf = None
    dry_run: DryRun = False
    channels: Channels = ()
    segments: Segments = ()
    stages: Stages = ()
    invoice_numbers: InvoiceNumbers = ()
    batch_size: BatchSize = None
    max_tasks: MaxTasks = 200
    concurrency: Concurrency = 4
    max_messages: MaxMessages = None
    policy_path: PolicyPath = None
    shards: Shards = 1
    shard: Shard = None
    shard_deployment: ShardDeployment = None

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

    @model_validator(mode="after")
    def _stages_of_the_policy(self) -> RunParameters:
        """Each stage filter names a stage of the run's policy (policy_path, else the
        configured default): a custom ladder's stages can be selected, a typo is refused."""
        if self.stages:
            check_stages(self.stages, self.policy_path)
        return self


def check_stages(stages: tuple[str, ...], policy_path: Path | None) -> None:
    """Raises ValueError naming ``stages`` entries that are not stages of the policy at
    ``policy_path`` (None: the configured default policy) and the stages it has. A policy
    that cannot be loaded is not judged here: the run's planning step reports it."""
    from dunning.errors import PolicyError
    from dunning.policy import load_policy

    try:
        policy = load_policy(policy_path)
    except PolicyError:
        return
    unknown = [s for s in stages if s not in policy.stage_names]
    if unknown:
        raise ValueError(
            f"stages {unknown} are not stages of the policy {policy.source or ''}".rstrip()
            + f"; use any of {list(policy.stage_names)} (a repeat counts as its stage)"
        )


F = TypeVar("F", bound=Callable[..., Any])


def document_parameters(fn: F) -> F:
    """``fn`` with an ``Args:`` section for each of its parameters that is a RunParameters
    field, taken from the field's description (apply it under ``@flow``).

    Why: Prefect builds the run form's descriptions from the flow function's docstring, and
    the descriptions live once, on the annotated types above.
    """
    import inspect

    names = [n for n in inspect.signature(fn).parameters if n in RunParameters.model_fields]
    lines = [f"    {n}: {RunParameters.model_fields[n].description}" for n in names]
    fn.__doc__ = (inspect.cleandoc(fn.__doc__ or "") + "\n\nArgs:\n" + "\n".join(lines)).strip()
    return fn

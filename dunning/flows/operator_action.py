"""The operator-action flow: one operator action, started from its deployment's form.

The deployment ``operator-action`` (prefect.yaml) has no schedule: in the Prefect UI an
operator opens it, picks the action and fills in the invoice or customer (or the id of a
reminder, inbox row or reply), a date, an amount and a reason, and runs it. The flow calls
the same code as the CLI (``dunning.operations.actions.perform``); the audit row names this
flow run. A refused action fails the run with the reason and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from pydantic import Field

from dunning.db import get_engine
from dunning.operations.actions import ActionName, ActionRequest, perform
from dunning.operations.audit import Actor
from dunning.timeouts import flow_timeout


@flow(
    name="operator-action",
    timeout_seconds=flow_timeout("operator_action"),
    log_prints=False,
    description="Pause, dispute, promise, record a payment, resolve a reminder, retry the "
    "inbox or acknowledge a reply; audited.",
)
def operator_action(
    action: ActionName = Field(description="What to do."),
    invoice: str | None = Field(
        default=None, description="Invoice number (invoice_* actions).", max_length=64
    ),
    customer: str | None = Field(
        default=None, description="Customer id (customer_pause, customer_resume).", max_length=64
    ),
    record_id: int | None = Field(
        default=None,
        ge=1,
        description="Reminder id (reminder_resolve_*), inbox row id "
        "(inbox_retry) or reply id (reply_ack).",
    ),
    date: dt.date | None = Field(
        default=None,
        description="Pause until (the pause ends on this date), promise to pay "
        "by, or payment date (invoice_paid; default now).",
    ),
    amount: str | None = Field(
        default=None,
        description="Amount in the invoice's currency, e.g. 120.50 "
        "(invoice_paid; invoice_promise: default the whole balance).",
        max_length=32,
    ),
    reason: str | None = Field(
        default=None, description="Why: kept in the audit trail.", max_length=500
    ),
    all_errors: bool = Field(default=False, description="inbox_retry: every inbox row in error."),
) -> dict[str, Any]:
    """The change made (target, before, after, audit id); raises Refused for a wrong state."""
    run_id = str(flow_run.get_id() or "")
    actor = Actor.flow_run(run_id, flow_run.get_name()) if run_id else Actor.os_user()
    request = ActionRequest(
        str(action),
        invoice or None,
        customer or None,
        record_id,
        date,
        amount or None,
        reason or None,
        all_errors,
    )
    result = perform(get_engine(), request, actor)
    get_run_logger().info("%s", result.message())
    create_markdown_artifact(
        key="operator-action",
        markdown=f"## {result.action}\n\n{result.message()}\n\nAudit row {result.audit_id}, "
        f"by {actor.name}." + (f"\n\nReason: {reason}" if reason else ""),
        description="What the operator action changed.",
    )
    return result.as_dict()

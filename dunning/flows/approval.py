"""The approval pause of a reminder run: Prefect's ``pause_flow_run`` waiting for an
:class:`Approval` form, which the Prefect UI shows on the paused flow run ("Resume") and the
API accepts as ``resume_flow_run(flow_run_id, run_input={"decision": "approve"})``.

Why an in-process pause and not ``suspend_flow_run``: a suspended run restarts from the top
on resume, re-planning as of a later instant; pausing keeps the plan the person approved.
The paused run keeps its heartbeats (the zombie guard leaves it alone) and its deployment's
concurrency slot.
"""

from __future__ import annotations

from enum import StrEnum

import pandas as pd
from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from dunning.approval import approval_reasons, approval_summary
from dunning.config import ApprovalSettings, get_settings
from dunning.masking import scrub


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"


class Approval(RunInput):
    """The approver's answer to a paused reminder run."""

    decision: Decision = Field(
        description="approve: send the reminders listed above now; reject: send nothing."
    )
    note: str | None = Field(
        default=None, max_length=500, description="Why (shown in the run's logs)."
    )


def await_approval(sends: pd.DataFrame, settings: ApprovalSettings | None = None) -> str | None:
    """None when the run may send ``sends`` (no approval needed, or approved); otherwise the
    message the run ends with (rejected, or no decision in time).

    Outside a flow run (a plain function call) there is nobody to ask: approval is skipped,
    and the caller decides whether that is acceptable.
    """
    settings = settings or get_settings().approval
    reasons = approval_reasons(sends, settings)
    if not reasons or FlowRunContext.get() is None:
        return None
    log = get_run_logger()
    log.info("waiting up to %d s for approval: %s", settings.timeout_seconds, "; ".join(reasons))
    summary = approval_summary(sends, reasons, settings.timeout_seconds)
    form = Approval.with_initial_data(description=summary)
    outcome: str | None
    try:
        answer = pause_flow_run(
            wait_for_input=form, timeout=settings.timeout_seconds, key="approval", poll_interval=5
        )
    except FlowPauseTimeout:
        outcome = (
            f"not approved within {settings.timeout_seconds} s "
            "(DUNNING_APPROVAL_TIMEOUT_SECONDS): nothing sent"
        )
    else:
        note = f" ({scrub(answer.note)})" if answer.note else ""
        if answer.decision == Decision.approve:
            outcome = None
            log.info("approved%s: sending %d message(s)", note, len(sends))
        else:
            outcome = (
                f"rejected by the approver{note}: nothing sent ({len(sends)} message(s) held back)"
            )
    # The run page keeps what was shown and what was decided.
    create_markdown_artifact(
        key="reminder-run-approval",
        markdown=f"{summary}\n\n**Decision:** {outcome or 'approved: sent'}\n",
        description="What the approver was shown, and the decision.",
    )
    return outcome

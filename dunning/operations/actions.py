"""Operator actions on invoices, customers, reminders, inbox rows and replies.

``perform`` is the one entry point, used by the CLI and by the ``operator-action`` flow. Each
action checks the current state and refuses a wrong one with ``Refused`` (nothing written);
otherwise it changes the rows and writes one ``operator_actions`` audit row in the same
transaction, and returns what changed. How each action shows in the next plan:

| action | next plan |
|---|---|
| invoice_pause, customer_pause | skipped ``invoice_paused``, ``customer_paused`` till the date |
| invoice_dispute | skipped ``disputed`` until undisputed (sources cannot undo it) |
| invoice_promise | skipped ``promise_to_pay`` until the date, then ``promise_broken`` |
| invoice_paid | a payment through ``record_payment``: balance, status, planned reminders |
| reminder_resolve_sent / _requeue | the stage counts as sent / the reminder goes out again |
| inbox_retry | the inbox row is applied again now |
| reply_ack | the reply leaves ``dunning replies --open`` |
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine

from dunning.db import session_scope
from dunning.db.models import utcnow
from dunning.operations import invoices, records
from dunning.operations.audit import Actor, plain, record
from dunning.operations.base import ActionRequest, Context, Handler, Refused

__all__ = ["ACTIONS", "ActionName", "ActionRequest", "ActionResult", "Refused", "perform"]


class ActionName(StrEnum):
    """The operator actions (the ``action`` field of the operator-action form)."""

    invoice_pause = "invoice_pause"
    invoice_resume = "invoice_resume"
    invoice_dispute = "invoice_dispute"
    invoice_undispute = "invoice_undispute"
    invoice_promise = "invoice_promise"
    invoice_paid = "invoice_paid"
    customer_pause = "customer_pause"
    customer_resume = "customer_resume"
    reminder_resolve_sent = "reminder_resolve_sent"
    reminder_resolve_requeue = "reminder_resolve_requeue"
    inbox_retry = "inbox_retry"
    reply_ack = "reply_ack"


ACTIONS = tuple(a.value for a in ActionName)
#: Replies that wait for a person: free text and "PAID ..." (STOP/START apply themselves).


@dataclass
class ActionResult:
    """What an action changed: the audit row id, its target and the fields before/after."""

    action: str
    target: str
    before: dict[str, Any]
    after: dict[str, Any]
    effect: str
    audit_id: int | None = None
    applied: dict[str, int] = field(default_factory=dict)

    def message(self) -> str:
        """One line for the operator: the target, each changed field and the effect."""
        changes = ", ".join(
            f"{k} {_show(self.before.get(k))} → {_show(v)}" for k, v in self.after.items()
        )
        return f"{self.target}: {changes or 'no field changed'}. {self.effect}"

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return {
            "action": self.action,
            "target": self.target,
            "audit_id": self.audit_id,
            "before": {k: plain(v) for k, v in self.before.items()},
            "after": {k: plain(v) for k, v in self.after.items()},
            "effect": self.effect,
            "applied": self.applied,
        }


def _show(value: Any) -> str:
    return (
        "—"
        if value is None
        else str(plain(value)).lower()
        if isinstance(value, bool)
        else str(plain(value))
    )


_HANDLERS: dict[str, Handler] = {**invoices.HANDLERS, **records.HANDLERS}


def perform(
    engine: Engine, req: ActionRequest, actor: Actor, now: dt.datetime | None = None
) -> ActionResult:
    """The result of performing ``req`` as ``actor``: the change and its audit row, written
    in one transaction. ``now`` (UTC, default the current instant) gives today's date for
    date checks. Raises Refused, with nothing written, when the state or an input is wrong.
    """
    req = replace(req, action=str(getattr(req.action, "value", req.action)))
    if req.action not in ACTIONS:
        raise Refused(f"unknown action {req.action!r}; use one of {', '.join(ACTIONS)}")
    now = now or utcnow()
    with session_scope(engine) as session:
        change = _HANDLERS[req.action](session, req, Context(now, now.date(), actor))
        audit = record(
            session,
            actor,
            req.action,
            change.target,
            customer_id=change.customer_id,
            invoice_id=change.invoice_id,
            reason=req.reason,
            before=change.before,
            after=change.after,
            at=now,
        )
        result = ActionResult(
            req.action, change.target, change.before, change.after, change.effect, audit.id
        )
    if req.action == "inbox_retry":
        from dunning.config import get_settings
        from dunning.tracking.apply import apply_inbox

        applied = apply_inbox(
            engine,
            reply_pause_days=get_settings().webhooks.reply_pause_days,
            ids=list(change.after["ids"]),
        )
        result.applied = applied.as_dict()
        result.effect += f" Outcome: {', '.join(f'{k} {v}' for k, v in result.applied.items())}."
    return result

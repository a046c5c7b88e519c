"""Operator actions on ledger records: resolve a reminder, retry inbox rows, acknowledge a
reply."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dunning.db.models import InboundMessage, Invoice, Reminder, WebhookInbox
from dunning.ledger.events import resolve_reminder
from dunning.operations.base import (
    ActionRequest,
    Change,
    Context,
    Handler,
    Refused,
    need,
    set_fields,
)

#: Replies that wait for a person: free text and "PAID ..." (STOP/START apply themselves).
REVIEW_KEYWORDS = (None, "paid")


def _resolvable(s: Session, req: ActionRequest, now: dt.datetime) -> Reminder:
    rid = need(req.record_id, "a reminder id", req.action)
    reminder = s.get(Reminder, rid)
    if reminder is None:
        raise Refused(f"no reminder {rid}; see dunning ledger --status unknown")
    if (
        reminder.status == "claimed"
        and reminder.lease_expires_at is not None
        and reminder.lease_expires_at > now
    ):
        raise Refused(
            f"reminder {rid} is claimed by a running flow run until "
            f"{reminder.lease_expires_at.isoformat()}; wait for its lease to end"
        )
    if reminder.status not in ("unknown", "claimed"):
        raise Refused(
            f"reminder {rid} is {reminder.status}; only unknown reminders and claims "
            "whose lease expired can be resolved"
        )
    return reminder


def _resolve(as_sent: bool) -> Handler:
    def resolve(s: Session, req: ActionRequest, ctx: Context) -> Change:
        reminder = _resolvable(s, req, ctx.now)
        values = resolve_reminder(reminder, as_sent=as_sent, at=ctx.now)
        effect = (
            "Counted as sent: the next plan treats the stage as done."
            if as_sent
            else "Planned again: the next run sends it if it is still due."
        )
        invoice = s.get_one(Invoice, reminder.invoice_id)
        return Change(
            f"reminder {reminder.id} ({invoice.invoice_number} {reminder.stage} "
            f"{reminder.channel})",
            reminder.customer_id,
            invoice.id,
            *values,
            effect,
        )

    return resolve


def _inbox_retry(s: Session, req: ActionRequest, ctx: Context) -> Change:
    stmt = select(WebhookInbox).where(WebhookInbox.status == "error")
    if req.all_errors:
        target = "inbox rows in error"
    else:
        rid = need(req.record_id, "an inbox row id or --all-errors", req.action)
        row = s.get(WebhookInbox, rid)
        if row is None:
            raise Refused(f"no inbox row {rid}")
        if row.status != "error":
            raise Refused(f"inbox row {rid} is {row.status}, not error; nothing to retry")
        stmt, target = stmt.where(WebhookInbox.id == rid), f"inbox row {rid}"
    rows = list(s.scalars(stmt.order_by(WebhookInbox.id)))
    if not rows:
        raise Refused("no inbox rows are in error; nothing to retry")
    ids, errors = [r.id for r in rows], [r.error for r in rows]
    s.execute(
        update(WebhookInbox)
        .where(WebhookInbox.id.in_(ids))
        .values(status="pending", error=None, attempts=0, next_attempt_at=None)
    )
    return Change(
        target,
        None,
        None,
        {"ids": ids, "status": "error", "errors": errors},
        {"ids": ids, "status": "pending"},
        f"{len(ids)} row(s) applied again now.",
    )


def _reply_ack(s: Session, req: ActionRequest, ctx: Context) -> Change:
    rid = need(req.record_id, "a reply id", req.action)
    reply = s.get(InboundMessage, rid)
    if reply is None:
        raise Refused(f"no reply {rid}; see dunning replies --open")
    if reply.keyword not in REVIEW_KEYWORDS:
        raise Refused(
            f"reply {rid} is {reply.keyword.upper() if reply.keyword else ''}, "
            "applied automatically; nothing to review"
        )
    if reply.acknowledged_at is not None:
        raise Refused(
            f"reply {rid} was acknowledged at {reply.acknowledged_at.isoformat()} "
            f"by {reply.acknowledged_by}"
        )
    before, after = set_fields(reply, acknowledged_at=ctx.now, acknowledged_by=ctx.actor.name[:200])
    return Change(
        f"reply {rid}",
        reply.customer_id,
        reply.invoice_id,
        before,
        after,
        "It leaves the review list (dunning replies --open).",
    )


#: The implementations, by action name.
HANDLERS: dict[str, Handler] = {
    "reminder_resolve_sent": _resolve(True),
    "reminder_resolve_requeue": _resolve(False),
    "inbox_retry": _inbox_retry,
    "reply_ack": _reply_ack,
}

"""The outbound event types and the one function that writes them to the outbox.

Every change that causes an event calls :func:`emit` with the connection or session of its
own transaction, so the event exists exactly when the change was committed (transactional
outbox). Payloads carry ids only, never a message body, an e-mail address or a phone number.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, insert
from sqlalchemy.orm import Session

from dunning.db.models import OutboundEvent, utcnow

#: The public event types (issue 18); subscribers choose among them.
EVENT_TYPES = (
    "reminder.sent",
    "reminder.delivered",
    "reminder.failed",
    "reminder.opened",
    "reply.received",
    "customer.opted_out",
    "payment.recorded",
    "promise.broken",
    "invoice.escalated",
    "operator.action",
)

#: Ledger statuses reached by tracking that are events, and their type.
STATUS_EVENTS = {
    "delivered": "reminder.delivered",
    "opened": "reminder.opened",
    "bounced": "reminder.failed",
    "undelivered": "reminder.failed",
    "failed_permanent": "reminder.failed",
}

EVENTS: Table = OutboundEvent.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Event:
    """One event to emit: its type, the ids it is about and a few non-personal facts
    (``data``: stage, channel, status, amounts as strings...)."""

    type: str
    invoice_id: int | None = None
    customer_id: str | None = None
    reminder_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


def _row(event: Event, at: dt.datetime) -> dict[str, Any]:
    if event.type not in EVENT_TYPES:
        raise ValueError(f"unknown outbound event type {event.type!r}; one of {EVENT_TYPES}")
    event_id = f"evt_{uuid.uuid4().hex}"
    payload = {
        "id": event_id,
        "type": event.type,
        "timestamp": at.astimezone(dt.UTC).isoformat(),
        "data": {
            "invoice_id": event.invoice_id,
            "customer_id": event.customer_id,
            "reminder_id": event.reminder_id,
            **event.data,
        },
    }
    return {"event_id": event_id, "type": event.type, "occurred_at": at, "payload": payload}


def emit(
    target: Connection | Session, events: Sequence[Event], at: dt.datetime | None = None
) -> int:
    """Write ``events`` to the outbox in ``target``'s transaction; returns how many.

    ``at`` (UTC, default now) is the event time. Raises ValueError for a type outside
    :data:`EVENT_TYPES`. The payload is ``{"id", "type", "timestamp", "data": {invoice_id,
    customer_id, reminder_id, ...}}``; ``id`` is also the webhook-id of every delivery.
    """
    if not events:
        return 0
    when = at or utcnow()
    target.execute(insert(EVENTS), [_row(e, when) for e in events])
    return len(events)

"""What a recorded payment does to the ledger: it is attributed to the reminders sent before
it, and a settled invoice's open reminders stop.

Called by the one payment path (``dunning.tracking.payments.record_payments``) in its
transaction; nothing else records payments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, or_, select, update
from sqlalchemy.orm import Session

from dunning.core.skip import SkipReason
from dunning.db.models import Reminder
from dunning.ledger.events import skip_open_reminders

#: Ids per IN list or executemany: well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 500
REMINDERS: Table = Reminder.__table__  # type: ignore[assignment]


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def attribute_payments(
    target: Connection | Session, paid_at: Mapping[int, Sequence[dt.datetime]]
) -> int:
    """The number of reminders whose ``paid_at`` moved; ``paid_at`` maps an invoice id to the
    instants (UTC) of its new positive payments.

    A reminder's ``paid_at`` is the first positive payment of its invoice at or after its
    ``sent_at`` (what "paid within 7 days" measures); an earlier payment recorded late (an
    import after a webhook) moves it back, never forward. Bulk statements (Core, one
    executemany per 500 rows) that bypass the ORM: a session's loaded reminders must be
    expired by the caller.
    """
    changes: list[dict[str, Any]] = []
    for chunk in _chunks(sorted(paid_at)):
        rows = target.execute(
            select(Reminder.id, Reminder.invoice_id, Reminder.sent_at, Reminder.paid_at).where(
                Reminder.invoice_id.in_(chunk), Reminder.sent_at.is_not(None)
            )
        )
        for rid, invoice_id, sent_at, current in rows:
            first = min((t for t in paid_at[invoice_id] if t >= sent_at), default=None)
            if first is not None and (current is None or first < current):
                changes.append({"rid": rid, "first": first})
    if changes:
        table = REMINDERS
        stmt = (
            update(table)
            .where(
                table.c.id == bindparam("rid"),
                or_(table.c.paid_at.is_(None), table.c.paid_at > bindparam("first")),
            )
            .values(paid_at=bindparam("first"))
        )
        for part in _chunks(changes):
            target.execute(stmt, list(part))
    return len(changes)


def stop_settled(target: Connection | Session, invoice_ids: Sequence[int]) -> int:
    """The number of planned or claimed reminders of ``invoice_ids`` (invoices paid in full)
    now ``skipped`` with reason ``paid``."""
    return sum(
        skip_open_reminders(target, invoice_ids=list(part), reason=SkipReason.PAID)
        for part in _chunks(list(invoice_ids))
    )

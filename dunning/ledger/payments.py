"""What a recorded payment does to the ledger: it is attributed to the reminders sent before
it, and a settled invoice's open reminders stop; and the one writer of payment attempts.

The payment functions are called by the one payment path
(``dunning.tracking.payments.record_payments``) in its transaction; nothing else records
payments. Every payment attempt (a failed or succeeded charge: ``dunning import
payment-attempts``, a source sync, a Stripe webhook) is inserted here, by ``insert_attempts``
(bulk, the importer) or ``record_attempt`` (one, idempotent on its external id);
tests/test_ledger_owns_writes.py fails on an insert elsewhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, or_, select, update
from sqlalchemy.orm import Session

from dunning.core.skip import SkipReason
from dunning.db.models import Invoice, PaymentAttempt, Reminder
from dunning.ledger.events import skip_open_reminders

#: Ids per IN list or executemany: well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 500
REMINDERS: Table = Reminder.__table__  # type: ignore[assignment]
ATTEMPTS: Table = PaymentAttempt.__table__  # type: ignore[assignment]


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


def insert_attempts(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """The number of payment attempts inserted: ``rows`` (each the columns of one
    ``payment_attempts`` row: invoice_id, attempted_at (UTC), outcome, failure_code, source,
    external_id, created_at...) in one executemany per 500, on ``conn``'s transaction. The
    caller has checked them (the importer's validation); a duplicate external id raises
    IntegrityError."""
    for part in _chunks(list(rows)):
        conn.execute(ATTEMPTS.insert(), [dict(r) for r in part])
    return len(rows)


def record_attempt(
    session: Session,
    invoice: Invoice,
    attempted_at: dt.datetime,
    outcome: str,
    failure_code: str | None,
    external_id: str,
    source: str,
) -> list[str]:
    """``["payment_attempt"]`` when the attempt was new, else ``[]`` (idempotent)."""
    exists = session.scalar(
        select(PaymentAttempt.id).where(PaymentAttempt.external_id == external_id)
    )
    if exists is not None:
        return []
    session.add(
        PaymentAttempt(
            invoice_id=invoice.id,
            attempted_at=attempted_at,
            outcome=outcome,
            failure_code=(failure_code or None) and failure_code[:64],
            source=source,
            external_id=external_id,
        )
    )
    return ["payment_attempt"]

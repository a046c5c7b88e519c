"""The payments home: the one payment path, a payment's effect on the ledger, and the one
writer of payment attempts.

The one payment path: record payments and refunds, settle invoices, attribute reminders.

Every payment, whatever its source (``dunning import payments``, a Stripe webhook, a source
sync, an operator), is recorded by :func:`record_payments` (or :func:`record_payment` for one),
which in the caller's transaction:

1. inserts the payment once (idempotent on its ``external_id``, the payment's own identity);
2. attributes it to the reminders sent before it: a reminder's ``paid_at`` is the first
   positive payment of its invoice at or after its ``sent_at`` (what "paid within 7 days"
   measures; the ledger's ``dunning.ledger.payments.attribute_payments``);
3. recomputes the balance (invoice amount minus every payment; refunds are negative): at or
   below zero an open invoice becomes ``paid`` and its planned or claimed reminders are skipped
   with reason ``paid`` (``dunning.ledger.payments.stop_settled``); a refund that reopens the
   balance reopens a paid invoice.

Amounts are Decimals in the invoice's currency at its ISO 4217 exponent; convert a provider's
minor units with the provider's table first (``dunning.stripe_currency``).

Every payment attempt (a failed or succeeded charge: ``dunning import payment-attempts``, a
source sync, a Stripe webhook) is inserted here too, by ``insert_attempts`` (bulk, the
importer) or ``record_attempt`` (one, idempotent on its external id).
tests/test_ledger_owns_writes.py fails on a payment or attempt insert elsewhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from dunning.core.skip import SkipReason
from dunning.db.models import Invoice, Payment, PaymentAttempt, Reminder, utcnow
from dunning.ledger.events import skip_open_reminders
from dunning.ledger.outbox import Event, emit

#: Ids per IN list or executemany: well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 500
REMINDERS: Table = Reminder.__table__  # type: ignore[assignment]
ATTEMPTS: Table = PaymentAttempt.__table__  # type: ignore[assignment]
# Core tables: bulk statements that bypass the ORM unit of work (see _expire).
INVOICES: Table = Invoice.__table__  # type: ignore[assignment]


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


class PaymentError(ValueError):
    """A payment event that cannot be applied (unknown invoice, wrong currency...)."""


@dataclass(frozen=True)
class NewPayment:
    """One payment or refund to record.

    ``amount`` is a Decimal in the invoice's currency (negative for a refund); ``paid_at`` a
    timezone-aware UTC instant; ``external_id`` the payment's own identity (``stripe:pi_...``,
    ``csv:INV-1:2026-11-02T00:00:00+00:00:12.50``), unique across sources; ``source`` where it
    came from (``import``, ``stripe``, ``operator``, a sources.toml name).
    """

    invoice_id: int
    amount: Decimal
    paid_at: dt.datetime
    external_id: str
    source: str


def balance(session: Session, invoice: Invoice) -> Decimal:
    """The invoice amount minus every payment recorded for it (refunds are negative)."""
    paid = session.scalar(
        select(func.coalesce(func.sum(Payment.amount), 0)).where(Payment.invoice_id == invoice.id)
    )
    return Decimal(invoice.amount) - Decimal(paid or 0)


def record_payments(session: Session, payments: Sequence[NewPayment]) -> list[list[str]]:
    """The kinds of change each of ``payments`` made, in input order.

    Kinds: ``payment`` or ``refund`` when the payment was new (``[]`` for one already
    recorded, or repeated earlier in ``payments``), plus ``invoice_paid`` or
    ``invoice_reopened`` on the invoice's last new payment when its status changed. Runs in
    the caller's transaction with a bounded number of statements per 500 payments (imports
    record thousands at once). Raises PaymentError for an invoice id that does not exist.
    """
    kinds: list[list[str]] = [[] for _ in payments]
    known: set[str] = set()
    for chunk in _chunks(sorted({p.external_id for p in payments})):
        known.update(
            session.scalars(select(Payment.external_id).where(Payment.external_id.in_(chunk)))
        )
    new: list[tuple[int, NewPayment]] = []
    for i, pay in enumerate(payments):
        if pay.external_id not in known:
            known.add(pay.external_id)
            new.append((i, pay))
    if not new:
        return kinds
    now = utcnow()
    session.flush()
    for part in _chunks(new):
        session.execute(
            insert(Payment),
            [
                {
                    "invoice_id": p.invoice_id,
                    "amount": p.amount,
                    "paid_at": p.paid_at,
                    "source": p.source,
                    "external_id": p.external_id,
                    "created_at": now,
                }
                for _, p in part
            ],
        )
    for i, pay in new:
        kinds[i].append("payment" if pay.amount >= 0 else "refund")
    _emit_payments(session, [p for _, p in new])
    invoice_ids = sorted({p.invoice_id for _, p in new})
    paid_at: dict[int, list[dt.datetime]] = {}
    for _, pay in new:
        if pay.amount > 0:
            paid_at.setdefault(pay.invoice_id, []).append(pay.paid_at)
    attribute_payments(session, paid_at)
    last = {p.invoice_id: i for i, p in new}
    for invoice_id, change in _settle(session, invoice_ids).items():
        kinds[last[invoice_id]].append(change)
    _expire(session, set(invoice_ids))
    return kinds


def record_payment(
    session: Session,
    invoice: Invoice,
    amount: Decimal,
    paid_at: dt.datetime,
    external_id: str,
    source: str,
) -> list[str]:
    """The kinds of change one payment made (see :func:`record_payments`); ``[]`` if known."""
    return record_payments(session, [NewPayment(invoice.id, amount, paid_at, external_id, source)])[
        0
    ]


#: The name this function had before it became the one path; kept for callers.
apply_payment = record_payment


def _emit_payments(session: Session, payments: list[NewPayment]) -> None:
    """One payment.recorded outbox event per new payment or refund (amount as a string in
    the invoice's currency, negative for a refund), in the payment's transaction."""
    customers: dict[int, tuple[str, str]] = {}
    for chunk in _chunks(sorted({p.invoice_id for p in payments})):
        for inv, cust, currency in session.execute(
            select(Invoice.id, Invoice.customer_id, Invoice.currency).where(Invoice.id.in_(chunk))
        ):
            customers[inv] = (cust, currency)
    emit(
        session,
        [
            Event(
                "payment.recorded",
                p.invoice_id,
                customers.get(p.invoice_id, (None, None))[0],
                None,
                {
                    "amount": str(p.amount),
                    "currency": customers.get(p.invoice_id, (None, None))[1],
                    "paid_at": p.paid_at.isoformat(),
                    "source": p.source,
                    "external_id": p.external_id,
                },
            )
            for p in payments
        ],
    )


def _settle(session: Session, invoice_ids: list[int]) -> dict[int, str]:
    """Invoice id -> ``invoice_paid``/``invoice_reopened`` for the invoices whose status moved."""
    changes: dict[int, str] = {}
    settled: list[int] = []
    table = INVOICES
    for chunk in _chunks(invoice_ids):
        paid = (
            select(Payment.invoice_id, func.sum(Payment.amount).label("paid"))
            .where(Payment.invoice_id.in_(chunk))
            .group_by(Payment.invoice_id)
            .subquery()
        )
        rows = session.execute(
            select(Invoice.id, Invoice.amount, Invoice.status, paid.c.paid).join(
                paid, paid.c.invoice_id == Invoice.id
            )
        ).all()
        if len(rows) != len(chunk):
            missing = sorted(set(chunk) - {r.id for r in rows})
            raise PaymentError(f"payments refer to unknown invoice id(s) {missing[:5]}")
        for row in rows:
            remaining = Decimal(row.amount) - Decimal(row.paid or 0)
            if remaining <= 0:
                settled.append(row.id)
                if row.status == "open":
                    changes[row.id] = "invoice_paid"
            elif row.status == "paid":
                changes[row.id] = "invoice_reopened"
    for status, change in (("paid", "invoice_paid"), ("open", "invoice_reopened")):
        ids = [i for i, c in changes.items() if c == change]
        for part in _chunks(ids):
            session.execute(
                update(table).where(table.c.id.in_(part)).values(status=status, updated_at=utcnow())
            )
    stop_settled(session, settled)
    return changes


def _expire(session: Session, invoice_ids: set[int]) -> None:
    # The statements above bypass the ORM: loaded invoices and reminders must be re-read.
    for obj in list(session.identity_map.values()):
        if (isinstance(obj, Invoice) and obj.id in invoice_ids) or (
            isinstance(obj, Reminder) and obj.invoice_id in invoice_ids
        ):
            session.expire(obj)

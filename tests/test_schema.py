"""The schema's guarantees hold on every backend."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dunning.db import session_scope
from dunning.db.models import Customer, Invoice, Reminder


def _customer_and_invoice(engine) -> int:
    with session_scope(engine) as s:
        s.add(Customer(customer_id="C1", country="JP", timezone="Asia/Tokyo", locale="ja_JP"))
        inv = Invoice(
            invoice_number="INV-1",
            customer_id="C1",
            currency="JPY",
            amount=Decimal("12000"),
            issued_on=dt.date(2026, 1, 1),
            due_on=dt.date(2026, 1, 31),
        )
        s.add(inv)
        s.flush()
        return inv.id


def test_ledger_rejects_a_second_row_for_the_same_invoice_stage_channel(engine):
    invoice_id = _customer_and_invoice(engine)
    with session_scope(engine) as s:
        s.add(Reminder(invoice_id=invoice_id, customer_id="C1", stage="due", channel="email"))
    with pytest.raises(IntegrityError), session_scope(engine) as s:
        s.add(Reminder(invoice_id=invoice_id, customer_id="C1", stage="due", channel="email"))
    with session_scope(engine) as s:
        s.add(Reminder(invoice_id=invoice_id, customer_id="C1", stage="due", channel="sms"))


def test_money_is_decimal_and_instants_come_back_utc(engine):
    invoice_id = _customer_and_invoice(engine)
    when = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with session_scope(engine) as s:
        s.add(
            Reminder(
                invoice_id=invoice_id, customer_id="C1", stage="due", channel="email", sent_at=when
            )
        )
    with session_scope(engine) as s:
        inv = s.get(Invoice, invoice_id)
        assert (
            inv is not None and inv.amount == Decimal("12000") and isinstance(inv.amount, Decimal)
        )
        sent = s.scalars(select(Reminder.sent_at)).one()
        assert sent == when and sent.utcoffset() == dt.timedelta(0)


def test_naive_datetimes_are_refused(engine):
    invoice_id = _customer_and_invoice(engine)
    with pytest.raises(Exception, match="timezone-aware"), session_scope(engine) as s:
        s.add(
            Reminder(
                invoice_id=invoice_id,
                customer_id="C1",
                stage="due",
                channel="email",
                sent_at=dt.datetime(2026, 1, 1),
            )
        )


def test_invoice_status_is_constrained(engine):
    _customer_and_invoice(engine)
    with pytest.raises(IntegrityError), session_scope(engine) as s:
        s.add(
            Invoice(
                invoice_number="INV-2",
                customer_id="C1",
                currency="USD",
                amount=Decimal("1"),
                issued_on=dt.date(2026, 1, 1),
                due_on=dt.date(2026, 1, 2),
                status="bogus",
            )
        )

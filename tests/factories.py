"""Small builders for database rows in tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from dunning.db import session_scope
from dunning.db.models import Customer, Invoice, Payment


def add_customer(engine: Engine, customer_id: str = "C1", **kw: Any) -> str:
    values: dict[str, Any] = dict(
        name="Ada Lovelace",
        email="ada@example.com",
        phone="+14155550100",
        country="US",
        timezone="America/New_York",
        locale="en_US",
        sms_consent=True,
    )
    values.update(kw)
    with session_scope(engine) as s:
        s.add(Customer(customer_id=customer_id, **values))
    return customer_id


def add_invoice(engine: Engine, number: str = "INV-1", customer_id: str = "C1", **kw: Any) -> int:
    values: dict[str, Any] = dict(
        currency="USD",
        amount=Decimal("100.00"),
        issued_on=dt.date(2026, 10, 1),
        due_on=dt.date(2026, 11, 1),
        status="open",
        payment_link="https://pay.example.com/x",
    )
    values.update(kw)
    with session_scope(engine) as s:
        inv = Invoice(invoice_number=number, customer_id=customer_id, **values)
        s.add(inv)
        s.flush()
        return inv.id


def add_payment(engine: Engine, invoice_id: int, amount: str, external_id: str) -> None:
    with session_scope(engine) as s:
        s.add(
            Payment(
                invoice_id=invoice_id,
                amount=Decimal(amount),
                external_id=external_id,
                paid_at=dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
            )
        )

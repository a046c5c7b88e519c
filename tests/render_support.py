"""A sample reminder for the rendering tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from dunning.core.messages import ReminderData

PAY_LINK = "https://pay.example.com/inv/7"


def reminder(**changes: object) -> ReminderData:
    """Invoice INV-2026-0007 of Jane Doe (1,234.50 EUR, due 2026-03-02, 4 days overdue) at
    overdue_1 by email, with ``changes`` applied."""
    base = ReminderData(
        reminder_id=41,
        invoice_id=7,
        invoice_number="INV-2026-0007",
        customer_id="C-1",
        stage="overdue_1",
        channel="email",
        segment="reliable",
        tone="neutral",
        customer_name="Jane Doe",
        email="jane@example.com",
        phone="+4915112345678",
        locale="en_US",
        timezone="Europe/Berlin",
        country="DE",
        currency="EUR",
        amount=Decimal("1234.50"),
        balance_due=Decimal("1234.50"),
        due_on=dt.date(2026, 3, 2),
        days_overdue=4,
        payment_link=PAY_LINK,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]

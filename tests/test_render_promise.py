"""Templates acknowledge the latest agreement: a promise's date, amount and the day agreed."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from dunning.config.channels import ChannelSettings
from dunning.core.messages import ReminderData
from dunning.locales import babel_locale
from dunning.money import format_money
from dunning.render import compose
from dunning.summary import format_day

LANGS = ("en", "de", "fr", "es", "ja", "pt", "it", "nl")
AGREED, PROMISED = dt.date(2026, 12, 3), dt.date(2026, 12, 10)
SETTINGS = ChannelSettings(
    unsubscribe_secret=SecretStr("s3cret"), unsubscribe_base_url="https://u.example/x"
)


def promise_broken(lang: str, **changes: object) -> ReminderData:
    base = ReminderData(
        reminder_id=41,
        invoice_id=7,
        invoice_number="INV-2026-0007",
        customer_id="C-1",
        stage="promise_broken",
        channel="email",
        segment=None,
        tone="firm",
        customer_name="Jane Doe",
        email="jane@example.com",
        phone=None,
        locale=f"{lang}_XX",
        timezone="Europe/Berlin",
        country="DE",
        currency="EUR",
        amount=Decimal("1234.50"),
        balance_due=Decimal("1234.50"),
        due_on=dt.date(2026, 11, 2),
        days_overdue=40,
        payment_link=None,
        promise_to_pay_on=PROMISED,
        promise_amount=Decimal("500.00"),
        promise_made_on=AGREED,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("lang", LANGS)
def test_promise_broken_says_what_was_agreed(lang: str) -> None:
    fmt = babel_locale(f"{lang}_XX")
    text = compose(promise_broken(lang), SETTINGS).text
    assert format_day(AGREED, fmt) in text and format_day(PROMISED, fmt) in text
    assert format_money(Decimal("500.00"), "EUR", fmt) in text

    whole = compose(promise_broken(lang, promise_amount=None), SETTINGS).text
    assert format_day(AGREED, fmt) in whole
    assert format_money(Decimal("500.00"), "EUR", fmt) not in whole

    # A promise from a file (no day agreed) or none at all: the general sentence.
    for data in (
        promise_broken(lang, promise_made_on=None),
        promise_broken(lang, promise_to_pay_on=None, promise_made_on=None),
    ):
        assert format_day(AGREED, fmt) not in compose(data, SETTINGS).text


def test_a_claimed_reminder_carries_the_latest_agreement(engine: Engine) -> None:
    from dunning.db import session_scope
    from dunning.db.models import Reminder
    from dunning.ledger import claim
    from dunning.operations.actions import ActionRequest, perform
    from dunning.operations.audit import Actor
    from tests.factories import add_customer, add_invoice

    add_customer(engine, "C1")
    invoice = add_invoice(engine, "INV-1", "C1", due_on=dt.date(2026, 11, 10))
    agreed = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
    perform(
        engine,
        ActionRequest(
            "invoice_promise",
            invoice="INV-1",
            date=PROMISED,
            amount="40",
        ),
        Actor("os user alice"),
        now=agreed,
    )
    with session_scope(engine) as s:
        row = Reminder(
            invoice_id=invoice,
            customer_id="C1",
            stage="promise_broken",
            channel="email",
            status="planned",
        )
        s.add(row)
        s.flush()
        rid = row.id
    after = dt.datetime(2026, 12, 11, 15, 0, tzinfo=dt.UTC)
    (data,) = claim(engine, [rid], claimer="t", lease_seconds=60, as_of=after).claimed
    assert (data.promise_to_pay_on, data.promise_amount, data.promise_made_on) == (
        PROMISED,
        Decimal("40.00"),
        AGREED,
    )
    assert "December 3, 2026" in compose(data, SETTINGS).text

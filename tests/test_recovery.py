"""Money metrics: balance reminded, collected within 7/14/30 days per currency, and DSO."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from sqlalchemy import Engine, insert
from typer.testing import CliRunner

from dunning.cli import _load_commands, app
from dunning.db import session_scope
from dunning.db.models import Invoice, Reminder
from dunning.tracking import record_payment
from dunning.tracking.recovery import dso, money_report
from tests.factories import add_customer, add_invoice

SENT = dt.datetime(2026, 10, 1, 9, tzinfo=dt.UTC)
D = dt.timedelta(days=1)


def remind(
    engine: Engine,
    invoice_id: int,
    stage: str,
    channel: str,
    balance: str,
    currency: str,
    sent_at: dt.datetime = SENT,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(Reminder).values(
                invoice_id=invoice_id,
                customer_id="C1",
                stage=stage,
                channel=channel,
                segment="reliable",
                status="sent",
                provider="sendgrid",
                sent_at=sent_at,
                balance_due=Decimal(balance),
                currency=currency,
            )
        )


def pay(engine: Engine, invoice_id: int, amount: str, at: dt.datetime, key: str) -> None:
    with session_scope(engine) as s:
        record_payment(s, s.get_one(Invoice, invoice_id), Decimal(amount), at, key, "import")


def test_money_by_stage_and_channel_per_currency(engine: Engine) -> None:
    add_customer(engine)
    usd = add_invoice(engine, "INV-USD", amount=Decimal("300.00"))
    jpy = add_invoice(engine, "INV-JPY", currency="JPY", amount=Decimal(54000))
    remind(engine, usd, "due", "email", "300.00", "USD")
    remind(engine, usd, "due", "sms", "300.00", "USD")
    remind(engine, jpy, "due", "email", "54000", "JPY")
    remind(engine, jpy, "overdue_1", "email", "54000", "JPY", SENT + 20 * D)
    pay(engine, usd, "100.00", SENT + 2 * D, "p1")  # within 7 days of both USD reminders
    pay(engine, usd, "50.00", SENT + 10 * D, "p2")  # within 14
    pay(engine, jpy, "20000", SENT + 25 * D, "p3")  # 24 days after due, 5 after overdue_1
    table = money_report(engine, SENT + 40 * D)
    rows = {(r["dimension"], r["value"], r["currency"]): r for r in table.to_dict("records")}
    due_usd = rows[("stage", "due", "USD")]
    # Two reminders of one invoice: its balance and each payment count once in the group.
    assert (due_usd["reminders"], due_usd["invoices"], due_usd["balance_reminded"]) == (
        2,
        1,
        "300.00",
    )
    assert (due_usd["collected_7d"], due_usd["collected_14d"], due_usd["collected_30d"]) == (
        "100.00",
        "150.00",
        "150.00",
    )
    assert rows[("channel", "sms", "USD")]["collected_7d"] == "100.00"
    assert rows[("stage", "due", "JPY")]["collected_30d"] == "20000"
    assert rows[("stage", "overdue_1", "JPY")]["collected_7d"] == "20000"
    assert rows[("segment", "reliable", "JPY")]["balance_reminded"] == "54000"
    # Before the windows elapsed nothing is counted, and n says so.
    young = money_report(engine, SENT + 3 * D, ["stage"]).to_dict("records")
    assert {(r["value"], r["collected_7d"], r["collected_7d_n"]) for r in young} == {
        ("due", "0.00", 0),
        ("due", "0", 0),
        ("overdue_1", "0", 0),
    }


def test_dso_per_currency(engine: Engine) -> None:
    add_customer(engine)
    at = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    a = add_invoice(
        engine,
        "A",
        amount=Decimal("1000.00"),
        issued_on=dt.date(2026, 10, 1),
        due_on=dt.date(2026, 10, 31),
    )
    add_invoice(
        engine,
        "B",
        amount=Decimal("500.00"),
        issued_on=dt.date(2026, 6, 1),
        due_on=dt.date(2026, 7, 1),
    )  # before the period: receivable, not a sale
    add_invoice(
        engine,
        "V",
        amount=Decimal("700.00"),
        issued_on=dt.date(2026, 11, 1),
        due_on=dt.date(2026, 12, 1),
        status="void",
    )
    add_invoice(
        engine,
        "F",
        amount=Decimal("90.00"),
        issued_on=dt.date(2026, 12, 5),
        due_on=dt.date(2026, 12, 30),
    )  # after as_of
    pay(engine, a, "400.00", at - 5 * D, "pa")
    pay(engine, a, "100.00", at + 5 * D, "later")  # after as_of: still receivable then
    # receivables 600 + 500 = 1100; credit sales in 90 days = 1000; DSO = 1100/1000*90 = 99
    assert dso(engine, at, 90) == [
        {
            "currency": "USD",
            "receivables": "1100.00",
            "credit_sales": "1000.00",
            "days": 90,
            "dso": 99.0,
        }
    ]
    assert dso(engine, at, 30)[0]["dso"] is None  # nothing invoiced in the last 30 days


def test_recovery_command_json(engine: Engine) -> None:
    add_customer(engine)
    inv = add_invoice(engine, "INV-1", currency="HUF", amount=Decimal("15000.50"))
    remind(engine, inv, "due", "email", "15000.50", "HUF")
    pay(engine, inv, "15000.50", SENT + D, "p")
    _load_commands()
    result = CliRunner().invoke(
        app, ["recovery", "--by", "stage", "--as-of", "2026-12-01T00:00:00Z", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["by"][0]["collected_7d"] == "15000.50"
    assert data["dso"][0]["currency"] == "HUF"
    bad = CliRunner().invoke(app, ["recovery", "--by", "colour"])
    assert bad.exit_code == 1 and "cannot group by colour" in bad.stderr

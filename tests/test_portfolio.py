"""load_portfolio against real SQLite/PostgreSQL, and the plan/forecast/segments commands."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

import dunning.cli.policy  # noqa: F401  (registers the commands on app)
from dunning.cli.app import app
from dunning.config import reload_settings
from dunning.db import session_scope
from dunning.db.models import PaymentAttempt, Reminder
from dunning.portfolio import load_portfolio
from tests.factories import add_customer, add_invoice, add_payment

AS_OF = "2026-11-24T15:00:00Z"  # 10:00 in New York


def _seed(engine: Engine) -> dict[str, int]:
    """Two customers; invoices USD (partly paid), JPY, paid, disputed; an attempt; a reminder."""
    add_customer(engine, "C1")
    add_customer(
        engine,
        "C2",
        email=None,
        phone=None,
        country="JP",
        timezone="Asia/Tokyo",
        locale="ja_JP",
        sms_consent=False,
        email_invalid=False,
    )
    ids = {
        "usd": add_invoice(
            engine, "INV-USD", "C1", amount=Decimal("100.50"), due_on=dt.date(2026, 11, 23)
        ),
        "jpy": add_invoice(
            engine,
            "INV-JPY",
            "C2",
            currency="JPY",
            amount=Decimal("12000"),
            due_on=dt.date(2026, 11, 20),
        ),
        "paid": add_invoice(
            engine,
            "INV-PAID",
            "C1",
            status="paid",
            amount=Decimal("10.00"),
            due_on=dt.date(2026, 10, 1),
        ),
        "disp": add_invoice(
            engine,
            "INV-DISP",
            "C1",
            status="disputed",
            due_on=dt.date(2026, 11, 10),
            promise_to_pay_on=dt.date(2026, 11, 30),
        ),
    }
    add_payment(engine, ids["usd"], "40.25", "pay-1")
    add_payment(engine, ids["paid"], "10.00", "pay-2")
    with session_scope(engine) as s:
        s.add(
            PaymentAttempt(
                invoice_id=ids["usd"],
                attempted_at=dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
                outcome="failed",
                failure_code="card_declined",
                external_id="att-1",
            )
        )
        s.add(
            Reminder(
                invoice_id=ids["jpy"],
                customer_id="C2",
                stage="overdue_1",
                channel="email",
                status="sent",
                sent_at=dt.datetime(2026, 11, 21, 1, tzinfo=dt.UTC),
            )
        )
    return ids


def test_load_portfolio_types_and_values(engine: Engine):
    ids = _seed(engine)
    p = load_portfolio(engine)
    inv = p.invoices.set_index("invoice_number")
    assert inv.loc["INV-USD", "amount_minor"] == 10050
    assert inv.loc["INV-USD", "paid_minor"] == 4025
    assert inv.loc["INV-JPY", "amount_minor"] == 12000  # JPY has no minor digits
    assert str(inv["amount_minor"].dtype) == "int64" and str(inv["paid_minor"].dtype) == "int64"
    assert inv.loc["INV-DISP", "promise_to_pay_on"] == dt.datetime(2026, 11, 30)
    assert str(inv["due_on"].dtype) == "datetime64[ns]"
    assert str(inv["currency"].dtype) == "category"
    cust = p.customers.set_index("customer_id")
    assert cust.loc["C1", "has_email"] and cust.loc["C1", "has_phone"]
    assert not cust.loc["C2", "has_email"] and not cust.loc["C2", "has_phone"]
    assert str(p.payments["paid_at"].dt.tz) == "UTC"
    assert p.attempts["invoice_id"].tolist() == [ids["usd"]]
    assert p.attempts["attempted_at"].iloc[0] == dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    assert p.ledger[["invoice_id", "stage", "channel", "status"]].astype(str).values.tolist() == [
        [str(ids["jpy"]), "overdue_1", "email", "sent"]
    ]


def test_load_portfolio_for_some_invoices_keeps_their_customers_history(engine: Engine):
    _seed(engine)
    p = load_portfolio(engine, invoice_numbers=["INV-USD"])
    assert set(p.customers["customer_id"]) == {"C1"}
    assert set(p.invoices["invoice_number"]) == {"INV-USD", "INV-PAID", "INV-DISP"}
    assert p.invoices.loc[p.invoices["in_scope"], "invoice_number"].tolist() == ["INV-USD"]


def _run(*args: str) -> list[dict]:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_plan_command(engine: Engine):
    _seed(engine)
    sends = _run("plan", "--as-of", AS_OF, "--json")
    assert [(r["invoice_number"], r["stage"], r["channel"], r["action"]) for r in sends] == [
        ("INV-USD", "payment_failed", "email", "send"),
        ("INV-USD", "payment_failed", "sms", "send"),
    ]
    assert sends[0]["not_before"] == "2026-11-24T15:00:00Z"
    assert (sends[0]["balance"], sends[0]["currency"], sends[0]["failed_attempts_90d"]) == (
        "60.25",
        "USD",
        1,
    )
    every = _run("plan", "--as-of", AS_OF, "--json", "--all")
    by = {(r["invoice_number"], r["channel"]): r for r in every}
    assert by[("INV-JPY", "email")]["reason"] == "already_sent"
    assert by[("INV-JPY", "sms")]["reason"] == "no_sms_consent"
    assert by[("INV-JPY", "email")]["stage"] == "overdue_1"
    assert by[("INV-DISP", "email")]["reason"] == "disputed"
    assert "INV-PAID" not in {r["invoice_number"] for r in every}
    assert set(every[0]) >= {
        "invoice_number",
        "customer_id",
        "segment",
        "stage",
        "channel",
        "action",
        "reason",
        "not_before",
    }


def test_forecast_and_segments_commands(engine: Engine):
    _seed(engine)
    days = _run("forecast", "--days", "11", "--as-of", AS_OF, "--json")
    assert days[0] == {
        "day": "2026-11-24",
        "stage": "payment_failed",
        "channel": "email",
        "count": 1,
    }
    # C1 is at_risk (failed attempt): overdue_2 from 4 days, final_notice from 7, each at least
    # min_gap_days (3) after the last reminder sent; Sat 11-28 defers overdue_2 to Monday.
    assert [(d["day"], d["stage"]) for d in days if d["channel"] == "sms"] == [
        ("2026-11-24", "payment_failed"),
        ("2026-11-25", "overdue_1"),
        ("2026-11-30", "overdue_2"),
        ("2026-12-03", "final_notice"),
    ]
    segments = {
        (s["segment"], s["currency"]): s for s in _run("segments", "--as-of", AS_OF, "--json")
    }
    assert segments[("at_risk", "USD")]["open_balance"] == "160.25"  # 60.25 + 100.00 disputed
    assert segments[("at_risk", "USD")]["open_invoices"] == 2
    assert segments[("new", "JPY")]["open_balance"] == "12000"
    assert segments[("at_risk", "USD")]["customers"] == 1
    table = CliRunner().invoke(app, ["segments", "--as-of", AS_OF])
    assert table.exit_code == 0 and "160.25" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--as-of", "yesterday"], "--as-of 'yesterday' is not an ISO 8601 instant"),
        (["forecast", "--days", "0"], "--days"),
    ],
)
def test_bad_input_exits_non_zero_with_a_message(engine: Engine, args, message):
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_unmigrated_database_and_bad_policy_are_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("DUNNING_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    reload_settings()

    reload_settings()
    result = CliRunner().invoke(app, ["plan"])
    assert result.exit_code == 1 and "dunning db upgrade" in result.output
    bad = tmp_path / "policy.toml"
    from dunning.policy import DEFAULT_POLICY_PATH

    bad.write_text(
        DEFAULT_POLICY_PATH.read_text().replace('min_balance = "1.00"', "min_balance = 'x'")
    )
    monkeypatch.setenv("DUNNING_POLICY_PATH", str(bad))
    reload_settings()
    result = CliRunner().invoke(app, ["segments"])
    assert result.exit_code == 1 and "'min_balance'" in result.output


def test_chunked_reading_gives_the_same_portfolio(engine: Engine, monkeypatch: pytest.MonkeyPatch):
    _seed(engine)
    whole = load_portfolio(engine)
    monkeypatch.setattr("dunning.portfolio._CHUNK_ROWS", 1)
    chunked = load_portfolio(engine)
    for name in ("customers", "invoices", "payments", "attempts", "ledger"):
        pd.testing.assert_frame_equal(getattr(chunked, name), getattr(whole, name))


def test_load_portfolio_matches_invoice_numbers_with_quotes_and_percent_signs(engine: Engine):
    add_customer(engine, "C%1")
    add_invoice(engine, "INV-100%'A", "C%1", amount=Decimal("5.00"), due_on=dt.date(2026, 11, 23))
    add_invoice(engine, "INV-OTHER", "C%1", amount=Decimal("7.00"), due_on=dt.date(2026, 11, 23))
    p = load_portfolio(engine, invoice_numbers=["INV-100%'A"])
    assert p.invoices.loc[p.invoices["in_scope"], "invoice_number"].tolist() == ["INV-100%'A"]
    assert set(p.customers["customer_id"]) == {"C%1"}

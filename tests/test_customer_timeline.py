"""``dunning customer show``: invoices with balances, then one dated list of what happened."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from sqlalchemy import Engine
from typer.testing import CliRunner

from dunning.cli import _load_commands, app
from dunning.db import session_scope
from dunning.db.models import DeliveryEvent, InboundMessage, PaymentAttempt, Reminder
from dunning.operations.actions import ActionRequest, perform
from dunning.operations.audit import Actor
from dunning.operations.timeline import customer_timeline
from tests.factories import add_customer, add_invoice, add_payment

T0 = dt.datetime(2026, 11, 3, 10, 0, tzinfo=dt.UTC)


def _history(engine: Engine) -> None:
    add_customer(engine, "C1")
    inv = add_invoice(engine, "INV-1", "C1", due_on=dt.date(2026, 11, 1))
    add_payment(engine, inv, "30.00", "pay-1")  # 2026-11-02
    with session_scope(engine) as s:
        reminder = Reminder(
            invoice_id=inv,
            customer_id="C1",
            stage="overdue_1",
            channel="sms",
            status="delivered",
            sent_at=T0,
            provider_message_id="SM1",
        )
        s.add(reminder)
        s.flush()
        s.add(
            DeliveryEvent(
                reminder_id=reminder.id,
                provider="twilio",
                provider_event_id="SM1:delivered",
                event_type="delivered",
                occurred_at=T0 + dt.timedelta(minutes=1),
            )
        )
        s.add(
            InboundMessage(
                provider="twilio",
                provider_message_id="SM9",
                from_address="+14155550100",
                customer_id="C1",
                reminder_id=reminder.id,
                invoice_id=inv,
                body="I will pay the rest next week",
                received_at=T0 + dt.timedelta(hours=2),
            )
        )
        s.add(
            PaymentAttempt(
                invoice_id=inv,
                attempted_at=T0 - dt.timedelta(days=2),
                outcome="failed",
                failure_code="card_declined",
                external_id="a1",
            )
        )
    perform(
        engine,
        ActionRequest(
            "invoice_promise",
            invoice="INV-1",
            date=dt.date(2026, 11, 12),
            amount="70",
            reason="call with AP",
        ),
        Actor("os user alice"),
        now=T0 + dt.timedelta(days=1),
    )


def test_the_timeline_is_one_dated_list(engine: Engine) -> None:
    _history(engine)
    view = customer_timeline(engine, "C1")
    (invoice,) = view["invoices"]
    assert (invoice["amount"], invoice["paid"], invoice["balance"]) == (
        Decimal("100.00"),
        Decimal("30.00"),
        Decimal("70.00"),
    )
    assert view["customer"]["phone"] != "+14155550100"  # masked
    kinds = [e["kind"] for e in view["timeline"]]
    assert kinds == [
        "payment_failed",
        "payment",
        "reminder",
        "delivery_event",
        "reply",
        "promise",  # dated by the day it was agreed (midnight UTC), before the action's time
        "operator_action",
    ]
    assert [e["at"] for e in view["timeline"]] == sorted(e["at"] for e in view["timeline"])
    action = view["timeline"][6]
    assert action["summary"] == "invoice_promise on invoice INV-1 by os user alice — call with AP"
    assert view["timeline"][5]["summary"] == "promise to pay 70.00 USD by 2026-11-12"
    assert "open for review" in view["timeline"][4]["summary"]


def test_show_prints_json_and_refuses_an_unknown_customer(engine: Engine) -> None:
    _history(engine)
    _load_commands()
    runner = CliRunner()
    shown = runner.invoke(app, ["customer", "show", "C1", "--json"])
    assert shown.exit_code == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["invoices"][0]["balance"] == "70.00"
    assert view["timeline"][0]["at"] == "2026-11-01T10:00:00+00:00"
    table = runner.invoke(app, ["customer", "show", "C1"])
    assert table.exit_code == 0 and "INV-1" in table.stdout
    missing = runner.invoke(app, ["customer", "show", "C404"])
    assert missing.exit_code == 1 and "no customer 'C404'" in missing.stderr

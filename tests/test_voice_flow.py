"""Done-when of voice reminders: a reminder run with the example policy against the fakes
calls each at_risk customer due a final notice once, records each call's outcome, and a
customer who pressed 9 is never called again."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from dunning.config import reload_settings
from dunning.db import session_scope
from dunning.db.models import Customer, Reminder
from dunning.tracking import apply_inbox
from tests.factories import add_customer, add_invoice
from tests.voice_support import climb, voice_rig, wait_for_calls

pytestmark = pytest.mark.prefect

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "policy_voice.toml"
# Tuesday 24 Nov 2026, 11:00 in Berlin: inside the voice window (10:00-17:00).
AS_OF = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
DUE = dt.date(2026, 11, 17)  # 7 days overdue: the at_risk final notice
PRESSES_9, MACHINE, NO_ANSWER = "+4915100000009", "+15005550020", "+15005550021"


def _portfolio(engine) -> None:
    berlin = {"country": "DE", "timezone": "Europe/Berlin", "locale": "de_DE"}
    big = {"currency": "EUR", "amount": Decimal("6000.00"), "due_on": DUE}
    for cid, phone in (("STOP", PRESSES_9), ("MACHINE", MACHINE), ("NOANSWER", NO_ANSWER)):
        add_customer(engine, cid, phone=phone, voice_consent=True, **berlin)
        climb(engine, add_invoice(engine, f"INV-{cid}", cid, **big), cid, AS_OF)
    # A second invoice: still one call a day.
    climb(engine, add_invoice(engine, "INV-STOP-2", "STOP", **big), "STOP", AS_OF)
    add_customer(engine, "NOCONSENT", phone="+4915100000010", **berlin)
    climb(engine, add_invoice(engine, "INV-NOCONSENT", "NOCONSENT", **big), "NOCONSENT", AS_OF)
    add_customer(engine, "SMALL", phone="+4915100000011", voice_consent=True, **berlin)
    small = add_invoice(
        engine, "INV-SMALL", "SMALL", currency="EUR", amount=Decimal("80.00"), due_on=DUE
    )  # not at_risk: no call
    climb(engine, small, "SMALL", AS_OF)


def test_example_policy_calls_at_risk_customers_once_and_9_stops_calls(
    prefect_server, engine, monkeypatch: pytest.MonkeyPatch
):
    from dunning.flows.payment_reminders import payment_reminders

    monkeypatch.setenv("DUNNING_POLICY_PATH", str(EXAMPLE))
    reload_settings()
    _portfolio(engine)
    with voice_rig(engine, monkeypatch, twilio_call_digits={PRESSES_9: "9"}) as rig:
        report = payment_reminders(as_of=AS_OF)
        assert report.counts()["failed"] == 0
        wait_for_calls(rig, engine, 3)
        assert sorted(c["to"] for c in rig.fakes.calls()) == sorted([PRESSES_9, MACHINE, NO_ANSWER])
        apply_inbox(engine)
        with session_scope(engine) as s:
            calls = {
                r.customer_id: (r.stage, r.status, r.call_outcome)
                for r in s.scalars(select(Reminder).where(Reminder.channel == "voice"))
            }
            opted_out = s.scalar(
                select(Customer.voice_opt_out).where(Customer.customer_id == "STOP")
            )
        assert calls == {
            "STOP": ("final_notice", "delivered", "completed"),
            "MACHINE": ("final_notice", "delivered", "voicemail"),
            "NOANSWER": ("final_notice", "undelivered", "no-answer"),
        }
        assert opted_out is True

        # The next day the unanswered call is placed once more (retry_no_answer), nobody else
        # is called: the voicemail counts as delivered and STOP pressed 9.
        payment_reminders(as_of=AS_OF + dt.timedelta(days=1))
        wait_for_calls(rig, engine, 4)
        assert [c["to"] for c in rig.fakes.calls()].count(NO_ANSWER) == 2
        with session_scope(engine) as s:
            retry = s.scalars(
                select(Reminder.stage).where(
                    Reminder.channel == "voice", Reminder.customer_id == "NOANSWER"
                )
            ).all()
        assert sorted(retry) == ["final_notice", "final_notice.retry"]

        # A week later the final notice repeats: everyone due is called again but STOP.
        later = AS_OF + dt.timedelta(days=7)
        payment_reminders(as_of=later)
        wait_for_calls(rig, engine, 6)
        called = [c["to"] for c in rig.fakes.calls()]
        assert called.count(PRESSES_9) == 1
        assert called.count(MACHINE) == 2 and called.count(NO_ANSWER) == 3
        with session_scope(engine) as s:
            skipped = s.scalars(
                select(Reminder.reason).where(
                    Reminder.channel == "voice",
                    Reminder.customer_id == "STOP",
                    Reminder.stage != "final_notice",
                )
            ).all()
        # The planner no longer plans the call at all (voice_opt_out), so no row exists.
        assert skipped == []

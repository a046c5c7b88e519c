"""Outbound events end to end: payment-reminders on a real Prefect server delivers one
verified ``reminder.sent`` per ledger ``sent`` row to a real receiver; a receiver down during
the run gets everything once the outbound-events flow runs after it is back."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select

from dunning.config import reload_settings
from dunning.db.models import Reminder
from tests.factories import add_customer, add_invoice
from tests.outbound_support import SECRET, Receiver, free_port, receiver

pytestmark = pytest.mark.prefect

# Tuesday 24 Nov 2026, 15:00 UTC = 10:00 in New York: inside the default send window.
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


def _portfolio(engine: Engine) -> None:
    add_customer(engine, "C1")
    add_customer(engine, "C2", email="bo@example.org", phone=None, sms_consent=False)
    add_invoice(engine, "INV-1", "C1", due_on=dt.date(2026, 11, 10))
    add_invoice(engine, "INV-2", "C2", due_on=dt.date(2026, 11, 12))


def _sent_ids(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        return set(conn.scalars(select(Reminder.id).where(Reminder.status == "sent")))


def _env(monkeypatch: pytest.MonkeyPatch, rx: Receiver) -> None:
    monkeypatch.setenv("DUNNING_OUTBOUND_WEBHOOK_URL", rx.url)
    monkeypatch.setenv("DUNNING_OUTBOUND_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("DUNNING_OUTBOUND_BACKOFF_SECONDS", "0")
    reload_settings()


def test_a_run_delivers_one_verified_reminder_sent_per_sent_row(
    prefect_server, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dunning.flows.payment_reminders import payment_reminders

    _portfolio(engine)
    rx = Receiver(free_port())
    _env(monkeypatch, rx)
    with receiver(rx):
        payment_reminders(as_of=AS_OF)
    sent = _sent_ids(engine)
    assert len(sent) >= 2 and rx.rejected == 0
    assert sorted(
        e["data"]["reminder_id"] for e in rx.verified if e["type"] == "reminder.sent"
    ) == sorted(sent)
    assert len(rx.verified) == len(sent)


def test_a_receiver_down_for_the_run_gets_everything_when_the_flow_runs_again(
    prefect_server, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dunning.flows.outbound_events import outbound_events
    from dunning.flows.payment_reminders import payment_reminders

    _portfolio(engine)
    rx = Receiver(free_port())
    _env(monkeypatch, rx)
    payment_reminders(as_of=AS_OF)  # nobody listens on the port
    sent = _sent_ids(engine)
    assert len(sent) >= 2 and rx.verified == []
    with receiver(rx):
        result = outbound_events()
        assert result["delivered"] == len(sent)
        assert outbound_events()["delivered"] == 0  # nothing twice
    assert sorted(e["data"]["reminder_id"] for e in rx.verified) == sorted(sent)
    assert {e["type"] for e in rx.verified} == {"reminder.sent"}

"""Outbound events: the outbox written with each change, Standard Webhooks delivery to a real
receiver verifying with the ``standardwebhooks`` package, retries, dead letter, replay."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from dunning.config import OutboundSettings, reload_settings
from dunning.core.messages import SendResult
from dunning.db import session_scope
from dunning.db.models import Invoice, OutboundDelivery, OutboundEvent, Reminder
from dunning.ledger import claim, record
from dunning.ledger.events import opt_out
from dunning.ledger.payments import record_payment
from dunning.operations.audit import Actor
from dunning.operations.audit import record as audit
from dunning.outbound.delivery import deliver_due
from dunning.outbound.subscribers import (
    add,
    listing,
    replay,
    validate_secret,
    validate_url,
)
from tests.factories import add_customer, add_invoice
from tests.outbound_support import SECRET, Receiver, free_port, receiver

NOW = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


def _planned(engine: Engine, count: int) -> list[int]:
    add_customer(engine, "C1")
    ids = []
    with session_scope(engine) as s:
        for n in range(count):
            inv = Invoice(
                invoice_number=f"INV-{n}",
                customer_id="C1",
                currency="USD",
                amount=Decimal("100.00"),
                issued_on=dt.date(2026, 10, 1),
                due_on=dt.date(2026, 11, 10),
                status="open",
            )
            s.add(inv)
            s.flush()
            row = Reminder(
                invoice_id=inv.id,
                customer_id="C1",
                stage="overdue_1",
                channel="email",
                status="planned",
            )
            s.add(row)
            s.flush()
            ids.append(row.id)
    return ids


def _events(engine: Engine) -> list[dict]:
    with session_scope(engine) as s:
        return [e.payload for e in s.scalars(select(OutboundEvent).order_by(OutboundEvent.id))]


def _send(engine: Engine, ids: list[int], ok: bool = True, claimer: str = "run-t") -> None:
    claimed = claim(engine, ids, claimer=claimer, lease_seconds=300).claimed
    results = [
        SendResult(
            d.reminder_id,
            ok,
            "outbox",
            provider_message_id="m",
            error_code=None if ok else "http_400",
            error=None if ok else "bad",
        )
        for d in claimed
    ]
    record(engine, results, {}, claimer=claimer)


def test_urls_must_be_https_except_loopback_and_secrets_are_whsec() -> None:
    assert validate_url("https://hooks.zapier.com/x") == "https://hooks.zapier.com/x"
    for loop in ("http://127.0.0.1:9/h", "http://localhost/h", "http://[::1]:8/h"):
        assert validate_url(loop) == loop
    with pytest.raises(ValueError, match="must use https"):
        validate_url("http://example.com/hook")
    with pytest.raises(ValueError, match="not an http"):
        validate_url("ftp://example.com/")
    assert validate_secret(SECRET) == SECRET
    with pytest.raises(ValueError, match="whsec_") as bad:
        validate_secret("sk_live_123456")
    assert "123456" not in str(bad.value)
    with pytest.raises(ValueError, match="24 to 64"):
        validate_secret("whsec_c2hvcnQ=")


def test_each_change_writes_its_event_in_its_own_transaction(engine: Engine) -> None:
    sent, failed, stale = _planned(engine, 3)
    _send(engine, [sent])
    _send(engine, [failed], ok=False)
    # A result from a worker that does not hold the claim changes nothing: no event.
    claim(engine, [stale], claimer="run-a", lease_seconds=300)
    record(engine, [SendResult(stale, True, "outbox", "m")], {}, claimer="run-b")
    with session_scope(engine) as s:
        invoice = s.get_one(Invoice, s.get_one(Reminder, sent).invoice_id)
        record_payment(s, invoice, Decimal("40.00"), NOW, "csv:1", "import")
        record_payment(s, invoice, Decimal("40.00"), NOW, "csv:1", "import")  # known: none
        opt_out(s, ["C1"], "sms", opted_out=True)
        opt_out(s, ["C1"], "sms", opted_out=True)  # already: none
        audit(
            s,
            Actor("os user t"),
            "invoice_pause",
            "invoice INV-0",
            customer_id="C1",
            invoice_id=invoice.id,
            reason="called Ada",
            before={},
            after={},
            at=NOW,
        )
    events = _events(engine)
    assert [e["type"] for e in events] == [
        "reminder.sent",
        "reminder.failed",
        "payment.recorded",
        "customer.opted_out",
        "operator.action",
    ]
    assert events[0]["data"]["reminder_id"] == sent
    assert events[1]["data"]["reminder_id"] == failed
    assert events[2]["data"]["amount"] == "40.0000" or events[2]["data"]["amount"] == "40.00"
    blob = str(events)
    for personal in ("ada@example.com", "+14155550100", "Ada", "called"):
        assert personal not in blob
    assert len({e["id"] for e in events}) == len(events)


def test_a_rolled_back_change_leaves_no_event(engine: Engine) -> None:
    add_customer(engine, "C1")
    invoice_id = add_invoice(engine, "INV-1", "C1")
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        record_payment(s, s.get_one(Invoice, invoice_id), Decimal("5"), NOW, "x:1", "import")
        raise RuntimeError("the caller failed after the payment")
    assert _events(engine) == []


def test_delivery_is_signed_retried_while_down_and_delivered_once_up(engine: Engine) -> None:
    settings = OutboundSettings(backoff_seconds=0, max_attempts=5, timeout_seconds=5)
    rx = Receiver(free_port())
    add(engine, rx.url, ["reminder.sent"], SECRET)
    _send(engine, _planned(engine, 3))
    down = deliver_due(engine, settings).as_dict()
    assert down["queued"] == 3 and down["retry"] == 3 and down["delivered"] == 0
    with receiver(rx):
        up = deliver_due(engine, settings).as_dict()
        again = deliver_due(engine, settings).as_dict()
    assert up["delivered"] == 3 and again["delivered"] == 0
    assert rx.types() == ["reminder.sent"] * 3 and rx.rejected == 0
    with session_scope(engine) as s:
        ids = set(s.scalars(select(OutboundEvent.event_id)))
    assert {a["webhook-id"] for a in rx.attempts} == ids
    [row] = listing(engine, settings)
    assert (row["pending"], row["delivered"], row["dead"]) == (0, 3, 0)
    assert SECRET not in str(row) and row["secret"].startswith("whsec_…")


def test_a_failing_receiver_moves_events_to_dead_letter_and_replay_requeues(engine: Engine) -> None:
    settings = OutboundSettings(backoff_seconds=0, max_attempts=3)
    rx = Receiver(free_port(), status=500)
    add(engine, rx.url, ["reminder.sent"], SECRET)
    _send(engine, _planned(engine, 2))
    with receiver(rx):
        outcomes = [deliver_due(engine, settings).as_dict() for _ in range(4)]
        assert [o["retry"] for o in outcomes] == [2, 2, 0, 0]
        assert outcomes[2]["dead"] == 2 and outcomes[3]["dead"] == 0
        # Every attempt was signed afresh under the event's one webhook-id.
        assert len(rx.attempts) == 6 and len({a["webhook-id"] for a in rx.attempts}) == 2
        assert len({a["webhook-signature"] for a in rx.attempts}) >= 2
        assert rx.rejected == 0
        [row] = listing(engine, settings)
        assert (row["pending"], row["dead"]) == (0, 2)
        assert outcomes[2]["dead_letters"][0]["attempts"] == 3
        rx.status = 200
        assert replay(engine, NOW - dt.timedelta(days=3650), settings) == 2
        assert deliver_due(engine, settings).as_dict()["delivered"] == 2
    assert rx.types() == ["reminder.sent"] * 2


def test_the_environment_subscriber_gets_every_outbox_event(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    rx = Receiver(free_port())
    _send(engine, _planned(engine, 2))  # before the subscriber exists
    monkeypatch.setenv("DUNNING_OUTBOUND_WEBHOOK_URL", rx.url)
    monkeypatch.setenv("DUNNING_OUTBOUND_WEBHOOK_SECRET", SECRET)
    reload_settings()
    settings = OutboundSettings()
    with receiver(rx):
        assert deliver_due(engine, settings).as_dict()["delivered"] == 2
    [row] = listing(engine, settings)
    assert row["source"] == "env" and SECRET not in str(row)
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(OutboundDelivery.id))) == 2


def test_escalation_and_a_broken_promise_write_their_events_once(engine: Engine) -> None:
    import pandas as pd

    from dunning.escalation import record_escalations
    from dunning.ledger import record_plan

    add_customer(engine, "C1")
    invoice_id = add_invoice(engine, "INV-1", "C1")
    line = {
        "invoice_id": invoice_id,
        "customer_id": "C1",
        "stage": "promise_broken",
        "channel": "email",
        "segment": None,
        "tone": None,
        "not_before": None,
    }
    record_plan(engine, pd.DataFrame([line]))
    record_plan(engine, pd.DataFrame([line]))  # re-planning adds no row: no second event
    esc = pd.DataFrame(
        [
            {
                "reason": "escalated",
                "invoice_id": invoice_id,
                "invoice_number": "INV-1",
                "customer_id": "C1",
                "stage": "final_notice",
                "days_overdue": 60,
                "currency": "USD",
                "balance_minor": 10000,
            }
        ]
    )
    record_escalations(engine, esc, at=NOW)
    record_escalations(engine, esc, at=NOW)  # escalated already: no second event
    events = _events(engine)
    assert [e["type"] for e in events] == ["promise.broken", "invoice.escalated"]
    assert events[1]["data"]["invoice_id"] == invoice_id
    assert events[1]["data"]["last_stage"] == "final_notice"

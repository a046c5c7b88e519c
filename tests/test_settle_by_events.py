"""Ambiguity settled by the provider's own events: a claim left by a timed-out send, or a
reminder marked ``unknown``, becomes sent when the provider reports on it."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from sqlalchemy import Engine, func, select

from dunning.channels import get_channel
from dunning.config import WebhookSettings, reload_settings
from dunning.db import session_scope
from dunning.db.models import Reminder, WebhookInbox
from dunning.devtools.fakes import run_fakes
from dunning.devtools.fakes.sendgrid import public_key_b64
from dunning.ledger import claim, record
from dunning.render import compose
from dunning.tracking import apply_inbox
from dunning.webhooks import create_app, store_records
from dunning.webhooks.verify import InboxRecord
from tests.factories import add_customer, add_invoice
from tests.tracking_support import running_app

CLAIMED_AT = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


def _reminder(
    engine: Engine, channel: str = "email", status: str = "planned", message_id: str | None = None
) -> int:
    add_customer(engine, "C1", email="ada@example.com")
    invoice = add_invoice(engine, "INV-1", "C1", due_on=dt.date(2026, 11, 10))
    with session_scope(engine) as s:
        row = Reminder(
            invoice_id=invoice,
            customer_id="C1",
            stage="overdue_1",
            channel=channel,
            status=status,
            provider_message_id=message_id,
            claimed_at=None if status == "planned" else CLAIMED_AT,
            reason="process stopped after claiming" if status == "unknown" else None,
        )
        s.add(row)
        s.flush()
        return row.id


def _row(engine: Engine, rid: int) -> Reminder:
    with session_scope(engine) as s:
        row = s.get_one(Reminder, rid)
        s.expunge(row)
        return row


def _wait_for_inbox(engine: Engine, count: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with session_scope(engine) as s:
            if s.scalar(select(func.count(WebhookInbox.id))) >= count:
                return
        time.sleep(0.05)
    pytest.fail(f"the fake's events never reached the receiver ({count} expected)")


def test_a_timed_out_sendgrid_claim_ends_sent_by_its_events(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = _reminder(engine)
    verify = WebhookSettings(sendgrid_webhook_public_key=public_key_b64(3))
    with running_app(create_app(verify, engine)) as receiver:
        # Every send is accepted, then the answer hangs past the client's 1 s timeout.
        with run_fakes(
            seed=3,
            timeout_rate=1.0,
            timeout_accepts=True,
            hang_s=3,
            sendgrid_event_url=f"{receiver}/webhooks/sendgrid/events",
        ) as fakes:
            for name, value in {**fakes.env(), "DUNNING_PROVIDER_TIMEOUT_SECONDS": "1"}.items():
                monkeypatch.setenv(name, value)
                reload_settings()
            (data,) = claim(engine, [rid], claimer="run-t", lease_seconds=300).claimed
            (result,) = get_channel("email").send_batch([compose(data)])
            assert not result.ok and (result.error_code or "").startswith("timeout")
            (recorded,) = record(engine, [result], {}, claimer="run-t")
            assert recorded.status == "claimed"  # ambiguous: the provider may have it
            assert [m.reminder_id for m in fakes.received("sendgrid")] == [str(rid)]
            _wait_for_inbox(engine, 2)  # processed, delivered
    summary = apply_inbox(engine).as_dict()
    assert summary["settled"] == 1 and summary["delivered"] == 1
    row = _row(engine, rid)
    assert row.status == "delivered" and row.sent_at == row.claimed_at
    assert row.provider_message_id and row.lease_expires_at is None


def test_unknown_reminders_shrink_when_the_provider_reports(engine: Engine) -> None:
    rid = _reminder(engine, status="unknown")
    event = {
        "event": "delivered",
        "sg_event_id": "ev-1",
        "reminder_id": str(rid),
        "sg_message_id": "abc123.filter0001",
        "email": "ada@example.com",
        "timestamp": int(CLAIMED_AT.timestamp()) + 60,
    }
    store_records(engine, [InboxRecord("sendgrid", "ev-1", "delivered", json.dumps(event))])
    assert apply_inbox(engine).as_dict() == {"delivered": 1, "settled": 1}
    row = _row(engine, rid)
    assert (row.status, row.sent_at, row.provider_message_id) == ("delivered", CLAIMED_AT, "abc123")
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).where(Reminder.status == "unknown")) == 0


def test_a_twilio_status_callback_settles_a_claim_and_a_drop_is_no_send(engine: Engine) -> None:
    sms = _reminder(engine, channel="sms", status="claimed", message_id="SM1")
    store_records(
        engine,
        [
            InboxRecord(
                "twilio",
                "SM1:sent",
                "sent",
                json.dumps({"MessageSid": "SM1", "MessageStatus": "sent"}),
            )
        ],
    )
    assert apply_inbox(engine).as_dict() == {"settled": 1}
    assert (_row(engine, sms).status, _row(engine, sms).sent_at) == ("sent", CLAIMED_AT)

    with session_scope(engine) as s:
        invoice = s.scalar(select(Reminder.invoice_id).where(Reminder.id == sms))
        dropped = Reminder(
            invoice_id=invoice,
            customer_id="C1",
            stage="overdue_2",
            channel="email",
            status="claimed",
            claimed_at=CLAIMED_AT,
            lease_expires_at=CLAIMED_AT,
        )
        s.add(dropped)
        s.flush()
        did = dropped.id
    event = {
        "event": "dropped",
        "sg_event_id": "ev-d",
        "reminder_id": str(did),
        "reason": "Bounced Address",
        "email": "ada@example.com",
    }
    store_records(engine, [InboxRecord("sendgrid", "ev-d", "dropped", json.dumps(event))])
    apply_inbox(engine)
    row = _row(engine, did)
    assert (row.status, row.sent_at, row.lease_expires_at) == ("failed_permanent", None, None)


def test_a_timed_out_twilio_claim_ends_sent_by_its_status_callback(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = _reminder(engine, channel="sms")
    with run_fakes(seed=4, timeout_rate=1.0, timeout_accepts=True, hang_s=3) as fakes:
        # The receiver reads Twilio's auth token from the one Twilio configuration (the
        # environment), so the fakes' credentials are in place before the app is created.
        for name, value in fakes.env().items():
            monkeypatch.setenv(name, value)
            reload_settings()
        with running_app(create_app(WebhookSettings(), engine)) as receiver:
            env = {
                **fakes.env(),
                "DUNNING_PROVIDER_TIMEOUT_SECONDS": "1",
                "DUNNING_TWILIO_STATUS_CALLBACK_URL": f"{receiver}/webhooks/twilio/status",
            }
            for name, value in env.items():
                monkeypatch.setenv(name, value)
                reload_settings()
            (data,) = claim(engine, [rid], claimer="run-t", lease_seconds=300).claimed
            (result,) = get_channel("sms").send_batch([compose(data)])
            assert not result.ok and (result.error_code or "").startswith("timeout")
            (recorded,) = record(engine, [result], {}, claimer="run-t")
            assert recorded.status == "claimed" and _row(engine, rid).provider_message_id is None
            (sent,) = fakes.received("twilio")
            _wait_for_inbox(engine, 2)  # sent, delivered
    summary = apply_inbox(engine).as_dict()
    assert summary["settled"] == 1 and summary["delivered"] == 1
    row = _row(engine, rid)
    assert (row.status, row.provider_message_id, row.sent_at) == (
        "delivered",
        sent.message_id,
        row.claimed_at,
    )

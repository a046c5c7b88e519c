"""Inbox rows in error: retried with backoff a bounded number of times, then by a person
(``inbox_retry``); replies for review: listed while open, acknowledged by an action."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from dunning.db import session_scope
from dunning.db.models import Customer, Invoice, OperatorAction, Payment, WebhookInbox
from dunning.operations.actions import ActionRequest, Refused, perform
from dunning.operations.audit import Actor
from dunning.tracking.apply import RetryPolicy, apply_inbox
from dunning.tracking.replies import list_replies
from dunning.webhooks import store_records
from dunning.webhooks.verify import InboxRecord
from tests.tracking_support import SENT_AT, seed, stripe_event

NOW = SENT_AT + dt.timedelta(days=1)
BOB = Actor("os user bob")


def _payment_for_unsynced_invoice(engine: Engine) -> int:
    """A Stripe payment for INV-9, which no source has synced yet; its inbox row id."""
    event = stripe_event(
        "evt_early",
        "invoice.paid",
        {
            "id": "in_9",
            "number": "INV-9",
            "amount_paid": 5000,
            "currency": "eur",
            "payment_intent": "pi_9",
        },
    )
    store_records(engine, [InboxRecord("stripe", "evt_early", "invoice.paid", json.dumps(event))])
    with session_scope(engine) as s:
        return int(s.scalar(select(WebhookInbox.id).where(WebhookInbox.event_id == "evt_early")))


def _inbox(engine: Engine, row_id: int) -> WebhookInbox:
    with session_scope(engine) as s:
        row = s.get_one(WebhookInbox, row_id)
        s.expunge(row)
        return row


def _sync_invoice_9(engine: Engine) -> None:
    with session_scope(engine) as s:
        s.add(
            Invoice(
                invoice_number="INV-9",
                customer_id="C1",
                currency="EUR",
                amount=Decimal("50.00"),
                issued_on=dt.date(2026, 2, 1),
                due_on=dt.date(2026, 3, 1),
            )
        )


def test_errors_are_retried_with_backoff_then_wait_for_a_person(engine: Engine) -> None:
    seed(engine)
    row_id = _payment_for_unsynced_invoice(engine)
    policy = RetryPolicy(max_attempts=3, base_seconds=60)
    assert apply_inbox(engine, now=NOW, retry=policy).as_dict() == {"error": 1}
    first = _inbox(engine, row_id)
    assert (first.status, first.attempts) == ("error", 1)
    assert first.next_attempt_at == NOW + dt.timedelta(seconds=60)

    assert apply_inbox(engine, now=NOW + dt.timedelta(seconds=59), retry=policy).as_dict() == {}
    second = apply_inbox(engine, now=NOW + dt.timedelta(seconds=60), retry=policy)
    assert second.as_dict() == {"error": 1, "retried": 1}
    assert _inbox(engine, row_id).next_attempt_at == NOW + dt.timedelta(seconds=180)
    apply_inbox(engine, now=NOW + dt.timedelta(seconds=180), retry=policy)
    given_up = _inbox(engine, row_id)
    assert (given_up.status, given_up.attempts, given_up.next_attempt_at) == ("error", 3, None)
    assert apply_inbox(engine, now=NOW + dt.timedelta(days=30), retry=policy).as_dict() == {}

    _sync_invoice_9(engine)
    result = perform(engine, ActionRequest("inbox_retry", record_id=row_id), BOB, now=NOW)
    assert result.applied == {"invoice_paid": 1, "payment": 1}
    assert _inbox(engine, row_id).status == "applied"
    with session_scope(engine) as s:
        assert s.scalar(select(func.sum(Payment.amount))) == Decimal("50.00")
        audit = s.scalar(select(OperatorAction))
        assert audit is not None and audit.actor == "os user bob"
        assert audit.before["status"] == "error" and "INV-9" in audit.before["errors"][0]
    with pytest.raises(Refused, match=f"inbox row {row_id} is applied, not error"):
        perform(engine, ActionRequest("inbox_retry", record_id=row_id), BOB, now=NOW)
    with pytest.raises(Refused, match="no inbox rows are in error"):
        perform(engine, ActionRequest("inbox_retry", all_errors=True), BOB, now=NOW)


def test_an_error_that_resolves_itself_is_applied_by_the_automatic_retry(engine: Engine) -> None:
    seed(engine)
    row_id = _payment_for_unsynced_invoice(engine)
    policy = RetryPolicy(max_attempts=5, base_seconds=300)
    apply_inbox(engine, now=NOW, retry=policy)
    _sync_invoice_9(engine)  # the source syncs it a few minutes later
    later = apply_inbox(engine, now=NOW + dt.timedelta(minutes=5), retry=policy)
    assert later.as_dict() == {"invoice_paid": 1, "payment": 1, "retried": 1}
    assert _inbox(engine, row_id).status == "applied"


def _reply(engine: Engine, sid: str, body: str) -> None:
    store_records(
        engine,
        [
            InboxRecord(
                "twilio",
                sid,
                "inbound",
                json.dumps({"MessageSid": sid, "From": "+4915112345678", "Body": body}),
            )
        ],
    )


def test_open_replies_shrink_when_acknowledged(engine: Engine) -> None:
    seed(engine, reminders=[("due", "sms", "sent")])
    _reply(engine, "SM1", "I already paid this by bank transfer last week")
    _reply(engine, "SM2", "PAID 2026-03-03")
    _reply(engine, "SM3", "STOP")
    apply_inbox(engine, now=NOW)
    assert len(list_replies(engine)) == 3
    open_replies = list_replies(engine, open_only=True)
    assert [r["keyword"] for r in open_replies] == ["paid", None]

    free_text = open_replies[1]["id"]
    result = perform(
        engine,
        ActionRequest("reply_ack", record_id=free_text, reason="bank transfer found, recorded"),
        BOB,
        now=NOW,
    )
    assert result.after["acknowledged_by"] == "os user bob"
    assert [r["keyword"] for r in list_replies(engine, open_only=True)] == ["paid"]
    with pytest.raises(Refused, match="was acknowledged"):
        perform(engine, ActionRequest("reply_ack", record_id=free_text), BOB, now=NOW)
    stop = next(r["id"] for r in list_replies(engine) if r["keyword"] == "stop")
    with pytest.raises(Refused, match="STOP, applied automatically"):
        perform(engine, ActionRequest("reply_ack", record_id=stop), BOB, now=NOW)
    with session_scope(engine) as s:
        assert s.get_one(Customer, "C1").sms_opt_out
        assert s.scalar(select(func.count(OperatorAction.id))) == 1

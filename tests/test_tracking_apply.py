"""Applying inbox events to the ledger (no Prefect, real database)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from sqlalchemy import Engine, func, select
from tracking_support import SENT_AT, seed, sg_event, stripe_event

from dunning.db import session_scope
from dunning.db.models import (
    Customer,
    DeliveryEvent,
    InboundMessage,
    Invoice,
    Payment,
    PaymentAttempt,
    Reminder,
    WebhookInbox,
)
from dunning.tracking import apply_inbox
from dunning.tracking.replies import list_replies
from dunning.webhooks import store_records
from dunning.webhooks.verify import InboxRecord

NOW = dt.datetime(2026, 3, 5, 12, 0, tzinfo=dt.UTC)


def put(
    engine: Engine, provider: str, event_id: str, kind: str, payload: dict[str, object]
) -> None:
    store_records(engine, [InboxRecord(provider, event_id, kind, json.dumps(payload))])


def sms_in(engine: Engine, sid: str, body: str, sender: str = "+4915112345678") -> None:
    put(engine, "twilio", sid, "inbound", {"MessageSid": sid, "From": sender, "Body": body})


def reminder(engine: Engine, rid: int) -> Reminder:
    with session_scope(engine) as s:
        return s.get_one(Reminder, rid)


def customer(engine: Engine) -> Customer:
    with session_scope(engine) as s:
        return s.get_one(Customer, "C1")


def test_email_status_only_moves_forward_and_hard_bounce_invalidates(engine: Engine) -> None:
    ids = seed(engine, reminders=[("due", "email", "sent"), ("overdue_1", "email", None)])
    rid = ids["due/email"]
    put(engine, "sendgrid", "e1", "open", sg_event("open", "e1", rid, timestamp=1772442100))
    put(engine, "sendgrid", "e2", "delivered", sg_event("delivered", "e2", rid))
    summary = apply_inbox(engine, now=NOW)
    r = reminder(engine, rid)
    assert r.status == "opened"  # the late "delivered" did not overwrite "opened"
    assert r.delivered_at == dt.datetime.fromtimestamp(int(SENT_AT.timestamp()) + 60, dt.UTC)
    assert r.opened_at == dt.datetime.fromtimestamp(1772442100, dt.UTC)
    assert summary.counts["opened"] == 1
    put(
        engine,
        "sendgrid",
        "e3",
        "bounce",
        sg_event("bounce", "e3", rid, type="bounce", reason="550 no such user"),
    )
    assert apply_inbox(engine, now=NOW).counts["email_invalid"] == 1
    r = reminder(engine, rid)
    assert (r.status, r.reason) == ("bounced", "550 no such user") and r.bounced_at is not None
    assert customer(engine).email_invalid is True
    planned = reminder(engine, ids["overdue_1/email"])
    assert (planned.status, planned.reason) == ("skipped", "email_invalid")


def test_soft_bounce_and_unsubscribe(engine: Engine) -> None:
    ids = seed(engine, reminders=[("due", "email", "sent")])
    rid = ids["due/email"]
    put(engine, "sendgrid", "s1", "bounce", sg_event("bounce", "s1", rid, type="blocked"))
    put(engine, "sendgrid", "s2", "unsubscribe", sg_event("unsubscribe", "s2", None))
    summary = apply_inbox(engine, now=NOW)
    assert reminder(engine, rid).status == "bounced"
    c = customer(engine)
    assert c.email_invalid is False and c.email_opt_out is True  # matched by email address
    assert summary.counts["opt_out_email"] == 1


def test_twilio_status_with_error_code_and_opt_out_code(engine: Engine) -> None:
    ids = seed(
        engine,
        reminders=[
            ("due", "sms", "sent"),
            ("overdue_1", "sms", "sent"),
            ("overdue_2", "sms", None),
        ],
    )
    put(engine, "twilio", "sms-due:delivered", "delivered", {"MessageSid": "sms-due"})
    put(engine, "twilio", "sms-due:sent", "sent", {"MessageSid": "sms-due"})
    put(
        engine,
        "twilio",
        "sms-overdue_1:failed",
        "failed",
        {"MessageSid": "sms-overdue_1", "ErrorCode": "21610"},
    )
    apply_inbox(engine, now=NOW)
    assert reminder(engine, ids["due/sms"]).status == "delivered"
    failed = reminder(engine, ids["overdue_1/sms"])
    assert (failed.status, failed.error_code) == ("failed_permanent", "21610")
    assert customer(engine).sms_opt_out is True
    assert reminder(engine, ids["overdue_2/sms"]).status == "skipped"


def test_stop_reply_skips_planned_sms_and_start_opts_back_in(engine: Engine) -> None:
    ids = seed(
        engine,
        reminders=[
            ("due", "sms", "sent"),
            ("overdue_1", "sms", "claimed"),
            ("overdue_1", "email", None),
        ],
    )
    sms_in(engine, "SMa", " stop ")
    summary = apply_inbox(engine, now=NOW)
    assert summary.counts["opt_out_sms"] == 1 and customer(engine).sms_opt_out is True
    assert (
        reminder(engine, ids["overdue_1/sms"]).status,
        reminder(engine, ids["overdue_1/sms"]).reason,
    ) == ("skipped", "sms_opt_out")
    assert reminder(engine, ids["overdue_1/email"]).status == "planned"  # email unaffected
    answered = reminder(engine, ids["due/sms"])
    assert answered.status == "replied" and answered.replied_at is not None
    sms_in(engine, "SMb", "START")
    apply_inbox(engine, now=NOW)
    assert customer(engine).sms_opt_out is False


def test_paid_reply_pauses_invoice_and_is_listed_masked(engine: Engine) -> None:
    ids = seed(engine, reminders=[("due", "sms", "sent")])
    sms_in(engine, "SMp", "PAID 03.03.2026")
    sms_in(engine, "SMq", "Can I pay next week?")
    summary = apply_inbox(engine, reply_pause_days=10, now=NOW)
    assert summary.counts["reply"] == 2 and summary.counts["paid_reply"] == 1
    with session_scope(engine) as s:
        inv = s.get_one(Invoice, ids["invoice"])
        assert inv.paused_until == dt.date(2026, 3, 15)
        assert inv.review_reason == "customer replied PAID 03.03.2026"
        keywords = sorted(str(k) for k in s.scalars(select(InboundMessage.keyword)))
    assert keywords == ["None", "paid"]
    replies = list_replies(engine)
    assert {r["from"] for r in replies} == {"+49*******5678"}
    assert {r["invoice_number"] for r in replies} == {"INV-1"}


def test_payment_between_planning_and_delivery_stops_reminders(engine: Engine) -> None:
    ids = seed(
        engine,
        reminders=[
            ("due", "email", "sent"),
            ("overdue_1", "email", None),
            ("overdue_1", "sms", "claimed"),
        ],
    )
    paid = stripe_event(
        "evt_paid",
        "invoice.paid",
        {
            "id": "in_1",
            "number": "INV-1",
            "amount_paid": 10000,
            "currency": "eur",
            "payment_intent": "pi_1",
            "status_transitions": {"paid_at": 1772452800},
        },
    )
    intent = stripe_event(
        "evt_pi",
        "payment_intent.succeeded",
        {
            "id": "pi_1",
            "amount": 10000,
            "amount_received": 10000,
            "currency": "eur",
            "metadata": {"invoice_number": "INV-1"},
        },
    )
    put(engine, "stripe", "evt_paid", "invoice.paid", paid)
    put(engine, "stripe", "evt_pi", "payment_intent.succeeded", intent)
    summary = apply_inbox(engine, now=NOW)
    assert summary.counts["invoice_paid"] == 1 and summary.counts["payment"] == 1
    with session_scope(engine) as s:
        assert s.get_one(Invoice, ids["invoice"]).status == "paid"
        assert s.scalar(select(func.sum(Payment.amount))) == Decimal("100.00")
    for key in ("overdue_1/email", "overdue_1/sms"):
        assert (reminder(engine, ids[key]).status, reminder(engine, ids[key]).reason) == (
            "skipped",
            "paid",
        )
    assert reminder(engine, ids["due/email"]).paid_at == dt.datetime.fromtimestamp(
        1772452800, dt.UTC
    )
    # A partial refund reopens the invoice; replaying the same refund changes nothing.
    refund = stripe_event(
        "evt_rf",
        "charge.refunded",
        {
            "id": "ch_1",
            "amount_refunded": 2500,
            "currency": "eur",
            "metadata": {"invoice_number": "INV-1"},
        },
    )
    put(engine, "stripe", "evt_rf", "charge.refunded", refund)
    put(engine, "stripe", "evt_rf_again", "charge.refunded", {**refund, "id": "evt_rf_again"})
    summary = apply_inbox(engine, now=NOW)
    assert summary.counts["refund"] == 1 and summary.counts["invoice_reopened"] == 1
    with session_scope(engine) as s:
        assert s.scalar(select(func.sum(Payment.amount))) == Decimal("75.00")
        assert s.get_one(Invoice, ids["invoice"]).status == "open"


def test_failed_payment_unknown_invoice_and_untracked_types(engine: Engine) -> None:
    seed(engine)
    put(
        engine,
        "stripe",
        "evt_f",
        "payment_intent.payment_failed",
        stripe_event(
            "evt_f",
            "payment_intent.payment_failed",
            {
                "id": "pi_2",
                "currency": "eur",
                "metadata": {"invoice_number": "INV-1"},
                "last_payment_error": {
                    "code": "card_declined",
                    "decline_code": "insufficient_funds",
                },
            },
        ),
    )
    put(
        engine,
        "stripe",
        "evt_x",
        "invoice.paid",
        stripe_event(
            "evt_x", "invoice.paid", {"number": "NOPE-9", "amount_paid": 1, "currency": "eur"}
        ),
    )
    put(
        engine, "stripe", "evt_c", "customer.created", stripe_event("evt_c", "customer.created", {})
    )
    summary = apply_inbox(engine, now=NOW)
    assert summary.as_dict() == {"error": 1, "ignored": 1, "payment_attempt": 1}
    with session_scope(engine) as s:
        assert s.scalar(select(PaymentAttempt.failure_code)) == "insufficient_funds"
        rows = {r.event_id: (r.status, r.error) for r in s.scalars(select(WebhookInbox))}
    assert rows["evt_x"][0] == "error" and "NOPE-9" in str(rows["evt_x"][1])
    assert rows["evt_c"][0] == "ignored" and rows["evt_f"] == ("applied", None)


def test_applying_again_changes_nothing(engine: Engine) -> None:
    ids = seed(engine, reminders=[("due", "email", "sent")])
    put(engine, "sendgrid", "e1", "delivered", sg_event("delivered", "e1", ids["due/email"]))
    assert apply_inbox(engine, now=NOW).counts["delivered"] == 1
    assert apply_inbox(engine, now=NOW).as_dict() == {}
    put(engine, "sendgrid", "e1", "delivered", sg_event("delivered", "e1", ids["due/email"]))
    assert apply_inbox(engine, now=NOW).as_dict() == {}
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(DeliveryEvent)) == 1

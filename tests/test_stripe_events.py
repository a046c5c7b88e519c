"""Stripe payments in both API generations, booked once per payment (its own identity).

Objects are Stripe's own fixtures (../shared/specs/stripe_fixtures3.json: resources invoice,
invoice_payment, payment_intent, charge) with the ids, amounts and links of each scenario.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from dunning.db import session_scope
from dunning.db.models import Invoice, Payment, Reminder, WebhookInbox
from dunning.tracking import apply_inbox
from dunning.webhooks.app import store_records
from dunning.webhooks.verify import InboxRecord
from tests.tracking_support import SENT_AT, seed

NOW = dt.datetime(2026, 3, 5, 12, 0, tzinfo=dt.UTC)
PAID_AT = int(SENT_AT.timestamp()) + 7200
_SPEC = Path("shared/specs/stripe_fixtures3.json")
_ROOTS = [Path(__file__).resolve().parents[1].parent, Path("/work")]


@cache
def _fixtures() -> dict[str, Any]:
    path = next(root / _SPEC for root in _ROOTS if (root / _SPEC).exists())
    resources: dict[str, Any] = json.loads(path.read_text())["resources"]
    return resources


def fixture(resource: str, **fields: Any) -> dict[str, Any]:
    """Stripe's fixture of ``resource`` with ``fields`` replaced."""
    return {**copy.deepcopy(_fixtures()[resource]), **fields}


def deliver(engine: Engine, *events: tuple[str, str, dict[str, Any]]) -> dict[str, int]:
    """Stores (event id, type, object) as verified events, applies the inbox, returns counts."""
    store_records(
        engine,
        [
            InboxRecord(
                "stripe",
                eid,
                kind,
                json.dumps({"id": eid, "type": kind, "created": PAID_AT, "data": {"object": obj}}),
            )
            for eid, kind, obj in events
        ],
    )
    return dict(apply_inbox(engine, now=NOW).counts)


def payments(engine: Engine) -> list[tuple[str, Decimal]]:
    with session_scope(engine) as s:
        return [(p.external_id, p.amount) for p in s.scalars(select(Payment).order_by(Payment.id))]


def basil_invoice(paid: int, *listed: tuple[str, int]) -> dict[str, Any]:
    """A 2025-03-31.basil invoice: no payment_intent field; its payments listed."""
    inv = fixture(
        "invoice",
        id="in_1",
        number="INV-1",
        currency="eur",
        amount_paid=paid,
        status="paid",
        status_transitions={"paid_at": PAID_AT},
    )
    inv.pop("payment_intent", None)
    inv["payments"] = {
        "object": "list",
        "has_more": False,
        "data": [invoice_payment(pi, amount) for pi, amount in listed],
    }
    return inv


def invoice_payment(pi: str, amount: int, invoice: Any = "in_1") -> dict[str, Any]:
    return fixture(
        "invoice_payment",
        id=f"inpay_{pi}",
        invoice=invoice,
        currency="eur",
        amount_paid=amount,
        amount_requested=amount,
        status="paid",
        payment={"type": "payment_intent", "payment_intent": pi},
        status_transitions={"paid_at": PAID_AT, "canceled_at": None},
    )


def intent(pi: str, amount: int, **fields: Any) -> dict[str, Any]:
    return fixture(
        "payment_intent",
        **{
            "id": pi,
            "amount": amount,
            "amount_received": amount,
            "currency": "eur",
            "status": "succeeded",
            **fields,
        },
    )


def test_basil_invoice_payment_and_intent_are_one_payment(engine: Engine) -> None:
    ids = seed(engine, reminders=[("due", "email", "sent"), ("overdue_1", "email", None)])
    with session_scope(engine) as s:  # synced from Stripe: the invoice keeps Stripe's id
        s.get_one(Invoice, ids["invoice"]).source_id = "in_1"
    counts = deliver(
        engine,
        ("evt_1", "invoice_payment.paid", invoice_payment("pi_1", 4000)),
        ("evt_2", "payment_intent.succeeded", intent("pi_1", 4000)),
        ("evt_3", "invoice.paid", basil_invoice(4000, ("pi_1", 4000))),
    )
    assert counts == {"payment": 1, "no_change": 2}
    assert payments(engine) == [("stripe:pi_1", Decimal("40.0000"))]
    with session_scope(engine) as s:
        assert s.get_one(Invoice, ids["invoice"]).status == "open"
        assert s.get_one(Reminder, ids["due/email"]).paid_at == dt.datetime.fromtimestamp(
            PAID_AT, dt.UTC
        )
        assert s.get_one(Reminder, ids["overdue_1/email"]).status == "planned"


def test_basil_invoice_lists_partial_payments_each_once(engine: Engine) -> None:
    ids = seed(engine, reminders=[("overdue_1", "sms", None)])
    expanded = {"id": "in_1", "object": "invoice", "number": "INV-1", "metadata": {}}
    counts = deliver(
        engine, ("evt_a", "invoice.paid", basil_invoice(10000, ("pi_a", 6000), ("pi_b", 4000)))
    )
    assert counts == {"payment": 2, "invoice_paid": 1}
    # The same payments seen again as their own events change nothing.
    again = deliver(
        engine,
        (
            "evt_b",
            "payment_intent.succeeded",
            intent("pi_b", 4000, metadata={"invoice_number": "INV-1"}),
        ),
        ("evt_c", "invoice_payment.paid", invoice_payment("pi_a", 6000, invoice=expanded)),
    )
    assert again == {"no_change": 2}
    assert [p[0] for p in payments(engine)] == ["stripe:pi_a", "stripe:pi_b"]
    with session_scope(engine) as s:
        row = s.get_one(Reminder, ids["overdue_1/sms"])
        assert (row.status, row.reason) == ("skipped", "paid")


def test_basil_invoice_without_payments_books_nothing_twice(engine: Engine) -> None:
    seed(engine)
    bare = basil_invoice(10000)
    bare.pop("payments")
    assert deliver(
        engine,
        ("evt_x", "invoice.paid", bare),
        (
            "evt_y",
            "payment_intent.succeeded",
            intent("pi_x", 10000, metadata={"invoice_number": "INV-1"}),
        ),
    ) == {"no_change": 1, "payment": 1, "invoice_paid": 1}
    assert payments(engine) == [("stripe:pi_x", Decimal("100.0000"))]


def test_old_generation_invoice_and_intent_are_one_payment(engine: Engine) -> None:
    seed(engine)
    old = fixture(
        "invoice",
        id="in_9",
        number="INV-1",
        currency="eur",
        amount_paid=2500,
        payment_intent={"id": "pi_9", "object": "payment_intent"},
        status_transitions={"paid_at": PAID_AT},
    )
    counts = deliver(
        engine,
        ("evt_9", "payment_intent.succeeded", intent("pi_9", 2500, invoice="in_9")),
        ("evt_10", "invoice.paid", old),
    )
    # The intent names only a Stripe invoice id we do not know: it waits for the invoice event.
    assert counts == {"error": 1, "payment": 1}
    assert payments(engine) == [("stripe:pi_9", Decimal("25.0000"))]
    with session_scope(engine) as s:
        errors = list(s.scalars(select(WebhookInbox.error).where(WebhookInbox.status == "error")))
    assert "Stripe invoice in_9 is not one of ours" in errors[0]


def test_refund_in_a_special_currency_uses_stripes_minor_units(engine: Engine) -> None:
    ids = seed(engine)
    with session_scope(engine) as s:
        inv = s.get_one(Invoice, ids["invoice"])
        inv.currency, inv.amount = "ISK", Decimal(20000)
    paid = intent("pi_k", 2000000, currency="isk", metadata={"invoice_number": "INV-1"})
    charge = fixture(
        "charge",
        id="ch_k",
        currency="isk",
        amount=2000000,
        amount_refunded=500000,
        payment_intent="pi_k",
        metadata={"invoice_number": "INV-1"},
    )
    assert deliver(
        engine, ("evt_p", "payment_intent.succeeded", paid), ("evt_r", "charge.refunded", charge)
    ) == {"payment": 1, "invoice_paid": 1, "refund": 1, "invoice_reopened": 1}
    assert [a for _, a in payments(engine)] == [Decimal(20000), Decimal(-5000)]

"""Stripe events to payments: both API generations, one booking per payment.

Stripe announces one payment several ways: ``payment_intent.succeeded``, ``invoice.paid`` (and
``invoice.payment_succeeded``), and since API version 2025-03-31.basil ``invoice_payment.paid``.
Basil removed ``invoice.payment_intent`` (and ``invoice.charge``); an invoice now lists its
payments in ``payments`` (``invoice_payment`` objects whose ``payment`` names the payment
intent or charge). Every event is booked under the payment's own identity (``stripe:pi_...``,
or ``stripe:ch_...`` for a charge without payment intent), so whichever event arrives second
is a no-op, in either generation.

Amounts are converted with Stripe's own minor units (``dunning.stripe_currency``) and booked
through the one payment path (``dunning.ledger.payments.record_payment``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from dunning.db.models import Invoice, Payment
from dunning.ledger.payments import PaymentError, record_attempt, record_payment
from dunning.stripe_currency import stripe_from_minor

INVOICE_PAID = ("invoice.paid", "invoice.payment_succeeded")
FAILED = ("invoice.payment_failed", "payment_intent.payment_failed")
STRIPE_TYPES = frozenset(
    {
        *INVOICE_PAID,
        *FAILED,
        "invoice_payment.paid",
        "payment_intent.succeeded",
        "charge.refunded",
    }
)

Obj = dict[str, Any]


class Unlinked(PaymentError):
    """A Stripe payment that names no invoice of ours (nothing to book; not an error)."""


def apply_stripe_event(session: Session, event: Obj) -> list[str]:
    """The kinds of change one Stripe event made.

    Raises Unlinked when the payment names no invoice (a basil payment intent of an invoice
    is booked from its ``invoice_payment.paid``), PaymentError when it names an unknown
    invoice or its currency or amount does not fit the invoice.
    """
    kind = event["type"]
    obj: Obj = (event.get("data") or {}).get("object") or {}
    created = _instant(event.get("created")) or dt.datetime.now(dt.UTC)
    if kind in FAILED:
        invoice = _invoice_of(session, event["id"], obj)
        error = obj.get("last_payment_error") or {}
        code = error.get("decline_code") or error.get("code") or obj.get("billing_reason")
        return record_attempt(
            session, invoice, created, "failed", code, f"stripe:{event['id']}", "stripe"
        )
    if kind == "charge.refunded":
        return _refund(session, _invoice_of(session, event["id"], obj), obj, created)
    if kind == "payment_intent.succeeded":
        if _known(session, obj.get("id")):
            return []  # booked from its invoice event already: nothing else to look up
        return _book(
            session,
            _invoice_of(session, event["id"], obj),
            obj,
            obj.get("amount_received") or obj.get("amount"),
            obj.get("id"),
            created,
        )
    if kind == "invoice_payment.paid":
        ref = obj.get("payment") or {}
        if _known(session, _id(ref.get("payment_intent")) or _id(ref.get("charge"))):
            return []
        invoice = _invoice_of(session, event["id"], {"invoice": obj.get("invoice")})
        return _book_invoice_payment(session, invoice, obj, created)
    if kind in INVOICE_PAID:
        return _invoice_paid(session, event["id"], obj, created)
    raise PaymentError(f"stripe event {event['id']}: type {kind} is not a payment event")


def _invoice_paid(session: Session, event_id: str, obj: Obj, created: dt.datetime) -> list[str]:
    invoice = _invoice_of(session, event_id, {**obj, "object": "invoice"})
    paid_at = _instant((obj.get("status_transitions") or {}).get("paid_at")) or created
    listed = (obj.get("payments") or {}).get("data") or []
    if listed:  # basil: the invoice lists its payments; book each under its own identity
        kinds: list[str] = []
        for payment in listed:
            if payment.get("status") in (None, "paid"):
                kinds += _book_invoice_payment(session, invoice, payment, paid_at)
        return kinds
    identity = _id(obj.get("payment_intent")) or _id(obj.get("charge"))
    if identity is None and obj.get("paid_out_of_band"):
        identity = f"{obj.get('id')}:out_of_band"  # marked paid outside Stripe: no payment
    if identity is None:
        # basil without `payments`: the money is booked from invoice_payment.paid or
        # payment_intent.succeeded, which name the payment.
        return []
    return _book(session, invoice, obj, obj.get("amount_paid"), identity, paid_at)


def _book_invoice_payment(
    session: Session, invoice: Invoice, payment: Obj, default_at: dt.datetime
) -> list[str]:
    ref = payment.get("payment") or {}
    identity = _id(ref.get("payment_intent")) or _id(ref.get("charge")) or payment.get("id")
    paid_at = _instant((payment.get("status_transitions") or {}).get("paid_at")) or default_at
    return _book(session, invoice, payment, payment.get("amount_paid"), identity, paid_at)


def _book(
    session: Session, invoice: Invoice, obj: Obj, minor: Any, identity: Any, paid_at: dt.datetime
) -> list[str]:
    if not identity:
        raise PaymentError("stripe payment without id; cannot book it exactly once")
    amount = _amount(invoice, obj, minor)
    if amount <= 0:
        return []
    return record_payment(session, invoice, amount, paid_at, f"stripe:{identity}", "stripe")


def _amount(invoice: Invoice, obj: Obj, minor: Any) -> Decimal:
    """``minor`` (Stripe's minor units of ``obj.currency``) as a Decimal in the invoice currency."""
    currency = str(obj.get("currency") or "").upper()
    if currency != invoice.currency:
        raise PaymentError(
            f"stripe {obj.get('object') or 'object'} {obj.get('id')}: currency "
            f"{currency or '-'} does not match invoice {invoice.invoice_number} "
            f"({invoice.currency})"
        )
    try:
        return stripe_from_minor(int(minor or 0), currency)
    except (TypeError, ValueError) as exc:
        raise PaymentError(f"stripe {obj.get('id')}: {exc}") from None


def _refund(session: Session, invoice: Invoice, obj: Obj, created: dt.datetime) -> list[str]:
    # amount_refunded is cumulative per charge: record only what is new since the last event.
    charge = obj.get("id")
    total = _amount(invoice, obj, obj.get("amount_refunded"))
    prefix = f"stripe:refund:{charge}:"
    earlier = session.scalar(
        select(func.coalesce(func.sum(Payment.amount), 0)).where(
            Payment.external_id.like(prefix + "%")
        )
    )
    delta = total + Decimal(earlier or 0)
    if delta <= 0:
        return []
    return record_payment(session, invoice, -delta, created, f"{prefix}{total}", "stripe")


def _known(session: Session, identity: str | None) -> bool:
    """Whether the payment ``identity`` (pi_..., ch_...) is booked already."""
    return (
        bool(identity)
        and session.scalar(select(Payment.id).where(Payment.external_id == f"stripe:{identity}"))
        is not None
    )


def _id(ref: Any) -> str | None:
    """The id of an expandable Stripe field: a string id, or an expanded object's ``id``."""
    if isinstance(ref, dict):
        ref = ref.get("id")
    return str(ref) if ref else None


def _instant(stamp: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(stamp), dt.UTC) if stamp else None


def _invoice_of(session: Session, event_id: str, obj: Obj) -> Invoice:
    """Our invoice a Stripe object belongs to.

    Looked up by ``metadata.invoice_number``, else the Stripe invoice's ``number``, else the
    object's ``invoice``: the expanded invoice, or a Stripe invoice id matched against the
    invoices' ``source_id`` (set by a Stripe source sync) or invoice number.
    """
    number = (obj.get("metadata") or {}).get("invoice_number")
    if not number and obj.get("object") == "invoice":
        number = obj.get("number")
    linked = obj.get("invoice")
    if not number and isinstance(linked, dict):
        return _invoice_of(session, event_id, {**linked, "object": "invoice"})
    stripe_id = obj.get("id") if obj.get("object") == "invoice" else linked
    if number:
        found = session.scalar(select(Invoice).where(Invoice.invoice_number == str(number)))
        if found is None:
            raise PaymentError(
                f"stripe event {event_id}: no invoice numbered {number!r}; import the invoice, "
                "then run `dunning inbox retry` (track-responses also retries it)"
            )
        return found
    if stripe_id:
        # A synced Stripe invoice keeps its in_... id as source_id (dunning.sources).
        found = session.scalar(
            select(Invoice)
            .where(
                or_(Invoice.source_id == str(stripe_id), Invoice.invoice_number == str(stripe_id))
            )
            .order_by(Invoice.id)
            .limit(1)
        )
        if found is not None:
            return found
        raise PaymentError(
            f"stripe event {event_id}: Stripe invoice {stripe_id} is not one of ours; set "
            "metadata.invoice_number on the Stripe invoice to our invoice number"
        )
    raise Unlinked(
        f"stripe event {event_id}: names no invoice (no metadata.invoice_number, invoice number "
        "or invoice id); a payment of an invoice is booked from its invoice event"
    )

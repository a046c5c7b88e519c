"""Payments and failed attempts: record them idempotently and settle the invoice.

``apply_payment`` is the one place where a payment changes an invoice's status and stops its
reminders; imports and webhooks both go through it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dunning.db.models import Invoice, Payment, PaymentAttempt, Reminder
from dunning.money import from_minor, is_currency
from dunning.tracking.ledger import skip_open_reminders


class PaymentError(ValueError):
    """A payment event that cannot be applied (unknown invoice, wrong currency...)."""


def balance(session: Session, invoice: Invoice) -> Decimal:
    """The invoice amount minus every payment recorded for it (refunds are negative)."""
    paid = session.scalar(
        select(func.coalesce(func.sum(Payment.amount), 0)).where(Payment.invoice_id == invoice.id)
    )
    return Decimal(invoice.amount) - Decimal(paid or 0)


def apply_payment(session: Session, invoice: Invoice, amount: Decimal, paid_at: dt.datetime,
                  external_id: str, source: str) -> list[str]:
    """The kinds of change made: ``payment``/``refund``, and ``invoice_paid`` when settled.

    Idempotent on ``external_id``. A balance at or below zero marks the invoice paid and
    skips its planned or claimed reminders (reason "paid"); a refund that reopens the balance
    reopens a paid invoice. Reminders sent before the payment get ``paid_at`` (first only).
    """
    if session.scalar(select(Payment.id).where(Payment.external_id == external_id)) is not None:
        return []
    session.add(Payment(invoice_id=invoice.id, amount=amount, paid_at=paid_at, source=source,
                        external_id=external_id))
    session.flush()
    kinds = ["payment" if amount >= 0 else "refund"]
    if amount > 0:
        session.execute(
            update(Reminder)
            .where(Reminder.invoice_id == invoice.id, Reminder.paid_at.is_(None),
                   Reminder.sent_at.is_not(None), Reminder.sent_at <= paid_at)
            .values(paid_at=paid_at)
        )
    remaining = balance(session, invoice)
    if remaining <= 0:
        skip_open_reminders(session, invoice_id=invoice.id, reason="paid")
        if invoice.status == "open":
            invoice.status = "paid"
            kinds.append("invoice_paid")
    elif invoice.status == "paid":
        invoice.status = "open"
        kinds.append("invoice_reopened")
    return kinds


def record_attempt(session: Session, invoice: Invoice, attempted_at: dt.datetime, outcome: str,
                   failure_code: str | None, external_id: str, source: str) -> list[str]:
    """``["payment_attempt"]`` when the attempt was new, else ``[]`` (idempotent)."""
    exists = session.scalar(
        select(PaymentAttempt.id).where(PaymentAttempt.external_id == external_id)
    )
    if exists is not None:
        return []
    session.add(PaymentAttempt(invoice_id=invoice.id, attempted_at=attempted_at, outcome=outcome,
                               failure_code=(failure_code or None) and failure_code[:64],
                               source=source, external_id=external_id))
    return ["payment_attempt"]


STRIPE_TYPES = {
    "invoice.paid",
    "invoice.payment_failed",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
}


def apply_stripe_event(session: Session, event: dict[str, Any]) -> list[str]:
    """The kinds of change one Stripe event made; PaymentError when it cannot be applied."""
    kind = event["type"]
    obj: dict[str, Any] = event.get("data", {}).get("object", {}) or {}
    created = dt.datetime.fromtimestamp(int(event.get("created") or 0), dt.UTC)
    invoice = _stripe_invoice(session, event["id"], obj)
    if kind in ("invoice.payment_failed", "payment_intent.payment_failed"):
        error = obj.get("last_payment_error") or {}
        code = error.get("decline_code") or error.get("code") or obj.get("billing_reason")
        return record_attempt(session, invoice, created, "failed", code,
                              f"stripe:{event['id']}", "stripe")
    currency = str(obj.get("currency", "")).upper()
    if currency != invoice.currency or not is_currency(currency):
        raise PaymentError(
            f"stripe event {event['id']}: currency {currency or '-'} does not match invoice "
            f"{invoice.invoice_number} ({invoice.currency})"
        )
    if kind == "charge.refunded":
        return _refund(session, invoice, obj, created)
    minor = obj.get("amount_paid") if kind == "invoice.paid" else (
        obj.get("amount_received") or obj.get("amount"))
    # invoice.paid and payment_intent.succeeded report the same money: key both on the
    # payment intent so whichever comes second is a no-op.
    intent = obj.get("payment_intent") if kind == "invoice.paid" else obj.get("id")
    key = f"stripe:{intent or obj.get('id') or event['id']}"
    paid_at = _paid_at(obj) or created
    return apply_payment(session, invoice, from_minor(int(minor or 0), currency), paid_at, key,
                         "stripe")


def _refund(session: Session, invoice: Invoice, obj: dict[str, Any],
            created: dt.datetime) -> list[str]:
    # amount_refunded is cumulative per charge: record only what is new since the last event.
    charge = obj.get("id")
    total = from_minor(int(obj.get("amount_refunded") or 0), invoice.currency)
    prefix = f"stripe:refund:{charge}:"
    earlier = session.scalar(
        select(func.coalesce(func.sum(Payment.amount), 0)).where(
            Payment.external_id.like(prefix + "%"))
    )
    delta = total + Decimal(earlier or 0)
    if delta <= 0:
        return []
    return apply_payment(session, invoice, -delta, created, f"{prefix}{total}", "stripe")


def _paid_at(obj: dict[str, Any]) -> dt.datetime | None:
    stamp = (obj.get("status_transitions") or {}).get("paid_at")
    return dt.datetime.fromtimestamp(int(stamp), dt.UTC) if stamp else None


def _stripe_invoice(session: Session, event_id: str, obj: dict[str, Any]) -> Invoice:
    number = (obj.get("metadata") or {}).get("invoice_number") or obj.get("number")
    if not number:
        raise PaymentError(
            f"stripe event {event_id}: no metadata.invoice_number or invoice number; set "
            "metadata.invoice_number on the Stripe object to our invoice number"
        )
    invoice = session.scalar(select(Invoice).where(Invoice.invoice_number == str(number)))
    if invoice is None:
        raise PaymentError(
            f"stripe event {event_id}: no invoice numbered {number!r}; import the invoice, "
            "then reset this inbox row to pending"
        )
    return invoice

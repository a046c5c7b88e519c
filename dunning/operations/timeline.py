"""A customer's timeline: their invoices with balances, then one dated list of everything
that happened (reminders with their delivery events, replies, payments and failed charges,
promises to pay, operator actions and their notes).

Personal data is masked as in logs (e-mail and phone); ``dunning customer export`` gives the
full record.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select

from dunning.core.status import ReminderStatus as S
from dunning.db import session_scope
from dunning.db.models import (
    Customer,
    DeliveryEvent,
    InboundMessage,
    Invoice,
    Payment,
    PaymentAttempt,
    Reminder,
)
from dunning.masking import mask_email, mask_phone
from dunning.money import quantize
from dunning.operations.audit import actions_of, plain
from dunning.operations.base import Refused


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def _invoices(session: Any, customer_id: str) -> list[dict[str, Any]]:
    paid = (
        select(func.coalesce(func.sum(Payment.amount), 0))
        .where(Payment.invoice_id == Invoice.id)
        .correlate(Invoice)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Invoice, paid.label("paid"))
        .where(Invoice.customer_id == customer_id)
        .order_by(Invoice.due_on, Invoice.invoice_number)
    ).all()
    out = []
    for invoice, paid_sum in rows:
        amount = quantize(Decimal(invoice.amount), invoice.currency)
        paid_total = quantize(Decimal(paid_sum or 0), invoice.currency)
        out.append(
            {
                "id": invoice.id,
                "invoice_number": invoice.invoice_number,
                "currency": invoice.currency,
                "amount": amount,
                "paid": paid_total,
                "balance": amount - paid_total,
                "issued_on": invoice.issued_on,
                "due_on": invoice.due_on,
                "status": invoice.status,
                "paused_until": invoice.paused_until,
                "promise_to_pay_on": invoice.promise_to_pay_on,
                "promise_amount": None
                if invoice.promise_amount is None
                else quantize(Decimal(invoice.promise_amount), invoice.currency),
                "promise_made_on": invoice.promise_made_on,
                "review_reason": invoice.review_reason,
            }
        )
    return out


def _events(
    session: Any, customer_id: str, numbers: dict[int, str], currencies: dict[int, str]
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    reminders = list(
        session.scalars(
            select(Reminder).where(Reminder.customer_id == customer_id).order_by(Reminder.id)
        )
    )
    delivery: dict[int, list[DeliveryEvent]] = {}
    if reminders:
        for ev in session.scalars(
            select(DeliveryEvent)
            .where(DeliveryEvent.reminder_id.in_([r.id for r in reminders]))
            .order_by(DeliveryEvent.occurred_at, DeliveryEvent.id)
        ):
            delivery.setdefault(int(ev.reminder_id), []).append(ev)
    for r in reminders:
        at = r.sent_at or r.claimed_at or r.planned_for or r.planned_at
        why = f" ({r.reason})" if r.reason and r.status not in (S.SENT, S.DELIVERED) else ""
        events.append(
            {
                "at": at,
                "kind": "reminder",
                "invoice_number": numbers.get(r.invoice_id),
                "reminder_id": r.id,
                "stage": r.stage,
                "channel": r.channel,
                "status": r.status,
                "summary": f"{r.stage} {r.channel}: {r.status}{why}",
            }
        )
        for ev in delivery.get(r.id, []):
            events.append(
                {
                    "at": ev.occurred_at,
                    "kind": "delivery_event",
                    "invoice_number": numbers.get(r.invoice_id),
                    "reminder_id": r.id,
                    "provider": ev.provider,
                    "event": ev.event_type,
                    "summary": f"{r.stage} {r.channel}: {ev.provider} {ev.event_type}"
                    + (f" ({ev.error_code})" if ev.error_code else ""),
                }
            )
    for m in session.scalars(
        select(InboundMessage).where(InboundMessage.customer_id == customer_id)
    ):
        state = (
            ""
            if m.keyword not in (None, "paid")
            else (" — acknowledged" if m.acknowledged_at else " — open for review")
        )
        events.append(
            {
                "at": m.received_at,
                "kind": "reply",
                "invoice_number": numbers.get(m.invoice_id),
                "reply_id": m.id,
                "keyword": m.keyword,
                "body": m.body,
                "summary": f"reply {m.body!r}{state}",
            }
        )
    ids = list(numbers)
    for p in session.scalars(select(Payment).where(Payment.invoice_id.in_(ids or [-1]))):
        kind = "payment" if p.amount >= 0 else "refund"
        currency = currencies[p.invoice_id]
        amount = quantize(Decimal(p.amount), currency)
        events.append(
            {
                "at": p.paid_at,
                "kind": kind,
                "invoice_number": numbers.get(p.invoice_id),
                "amount": amount,
                "currency": currency,
                "source": p.source,
                "summary": f"{kind} {abs(amount)} {currency} ({p.source})",
            }
        )
    for a in session.scalars(
        select(PaymentAttempt).where(
            PaymentAttempt.invoice_id.in_(ids or [-1]), PaymentAttempt.outcome == "failed"
        )
    ):
        events.append(
            {
                "at": a.attempted_at,
                "kind": "payment_failed",
                "invoice_number": numbers.get(a.invoice_id),
                "failure_code": a.failure_code,
                "summary": f"charge failed ({a.failure_code or 'no code'})",
            }
        )
    return events


def _promises(invoices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for inv in invoices:
        on = inv["promise_to_pay_on"]
        if on is None:
            continue
        amount = inv["promise_amount"]
        what = f"{amount} {inv['currency']}" if amount is not None else "the balance"
        out.append(
            {
                "at": _midnight(inv["promise_made_on"] or on),
                "kind": "promise",
                "invoice_number": inv["invoice_number"],
                "promise_to_pay_on": on,
                "amount": amount,
                "summary": f"promise to pay {what} by {on}",
            }
        )
    return out


def customer_timeline(engine: Engine, customer_id: str) -> dict[str, Any]:
    """``{"customer": {...}, "invoices": [...], "timeline": [...]}`` for ``customer_id``.

    Invoices carry amount, paid, balance (Decimals in their currency), status, pause and
    promise. Timeline entries are oldest first, each with ``at`` (UTC), ``kind`` (reminder,
    delivery_event, reply, payment, refund, payment_failed, promise, operator_action),
    ``invoice_number`` (or None) and a one-line ``summary``. Raises Refused for an unknown id.
    """
    with session_scope(engine) as session:
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise Refused(f"no customer {customer_id!r}; check the id (dunning import customers)")
        head = {
            "customer_id": customer.customer_id,
            "name": customer.name,
            "email": mask_email(customer.email),
            "phone": mask_phone(customer.phone),
            "locale": customer.locale,
            "timezone": customer.timezone,
            "email_opt_out": customer.email_opt_out,
            "sms_opt_out": customer.sms_opt_out,
            "paused_until": customer.paused_until,
            "erased": customer.erased_at is not None,
        }
        invoices = _invoices(session, customer_id)
        numbers = {inv["id"]: inv["invoice_number"] for inv in invoices}
        currencies = {inv["id"]: inv["currency"] for inv in invoices}
        events = _events(session, customer_id, numbers, currencies) + _promises(invoices)
    for a in actions_of(engine, customer_id, list(numbers)):
        note = f" — {a['reason']}" if a["reason"] else ""
        events.append(
            {
                "at": a["at"],
                "kind": "operator_action",
                "invoice_number": numbers.get(a["invoice_id"]) if a["invoice_id"] else None,
                "action": a["action"],
                "actor": a["actor"],
                "reason": a["reason"],
                "before": a["before"],
                "after": a["after"],
                "summary": f"{a['action']} on {a['target']} by {a['actor']}{note}",
            }
        )
    events.sort(key=lambda e: (e["at"] or _midnight(dt.date.min), e["kind"]))
    return {"customer": head, "invoices": invoices, "timeline": events}


def as_json(value: Any) -> Any:
    """``value`` (a timeline) with dates and instants as ISO 8601 and Decimals as strings."""
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    return plain(value)

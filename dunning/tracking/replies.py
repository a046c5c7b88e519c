"""Inbound SMS: opt-out/opt-in keywords, "PAID" replies and the operators' reply list."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session

from dunning.db import session_scope
from dunning.db.models import Customer, InboundMessage, Invoice, Reminder
from dunning.ledger.events import advance, customers_by_phone, opt_out
from dunning.ledger.outbox import Event, emit
from dunning.masking import mask_phone
from dunning.tracking.status import parse_keyword


def apply_inbound(
    session: Session,
    fields: dict[str, Any],
    received: dt.datetime,
    pause_days: int,
    now: dt.datetime,
) -> list[str]:
    """The kinds of change one inbound SMS made (reply, opt_out_sms, opt_in_sms, paid_reply)."""
    sid = str(fields.get("MessageSid") or fields["SmsSid"])
    if (
        session.scalar(select(InboundMessage.id).where(InboundMessage.provider_message_id == sid))
        is not None
    ):
        return ["duplicate"]
    sender = str(fields.get("From") or "") or None
    body = str(fields.get("Body") or "")
    customers = customers_by_phone(session, sender)
    reminder = _latest_sms_reminder(session, customers)
    keyword = parse_keyword(body)
    customer_id = reminder.customer_id if reminder else (customers[0] if customers else None)
    session.add(
        InboundMessage(
            provider="twilio",
            provider_message_id=sid,
            from_address=sender,
            customer_id=customer_id,
            reminder_id=reminder.id if reminder else None,
            invoice_id=reminder.invoice_id if reminder else None,
            body=body,
            keyword=keyword.keyword,
            received_at=received,
        )
    )
    kinds = ["reply"]
    # Only ids and the keyword leave: never the reply's text or the sender's number.
    emit(
        session,
        [
            Event(
                "reply.received",
                reminder.invoice_id if reminder else None,
                customer_id,
                reminder.id if reminder else None,
                {"channel": "sms", "keyword": keyword.keyword},
            )
        ],
        received,
    )
    if reminder is not None:
        advance(reminder, "replied", received)  # sets replied_at the first time
    if keyword.keyword in ("stop", "start"):
        # The number opted out, so every customer sharing it does.
        kinds += opt_out(session, customers, "sms", opted_out=keyword.keyword == "stop")
    elif keyword.keyword == "paid":
        invoices = [reminder.invoice_id] if reminder else _open_invoices(session, customers)
        until = now.date() + dt.timedelta(days=pause_days)
        said = f"customer replied PAID {keyword.paid_text or ''}".strip()
        for invoice_id in invoices:
            invoice = session.get_one(Invoice, invoice_id)
            invoice.paused_until = max(until, invoice.paused_until or until)
            invoice.review_reason = said[:200]
        if invoices:
            kinds.append("paid_reply")
    return kinds


def _latest_sms_reminder(session: Session, customers: list[str]) -> Reminder | None:
    if not customers:
        return None
    return session.scalar(
        select(Reminder)
        .where(
            Reminder.customer_id.in_(customers),
            Reminder.channel == "sms",
            Reminder.sent_at.is_not(None),
        )
        .order_by(Reminder.sent_at.desc(), Reminder.id.desc())
        .limit(1)
    )


def _open_invoices(session: Session, customers: list[str]) -> list[int]:
    if not customers:
        return []
    return list(
        session.scalars(
            select(Invoice.id).where(Invoice.customer_id.in_(customers), Invoice.status == "open")
        )
    )


def list_replies(
    engine: Engine, limit: int = 100, *, open_only: bool = False
) -> list[dict[str, Any]]:
    """The latest inbound replies, newest first, with the sender's phone masked; with
    ``open_only`` only those waiting for review: free text or PAID, not yet acknowledged
    (STOP/START apply themselves)."""
    stmt = (
        select(InboundMessage, Invoice.invoice_number, Customer.name, Reminder.stage)
        .outerjoin(Invoice, Invoice.id == InboundMessage.invoice_id)
        .outerjoin(Customer, Customer.customer_id == InboundMessage.customer_id)
        .outerjoin(Reminder, Reminder.id == InboundMessage.reminder_id)
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(limit)
    )
    if open_only:
        stmt = stmt.where(
            or_(InboundMessage.keyword.is_(None), InboundMessage.keyword == "paid"),
            InboundMessage.acknowledged_at.is_(None),
        )
    with session_scope(engine) as session:
        return [
            {
                "id": msg.id,
                "received_at": msg.received_at.isoformat(),
                "from": mask_phone(msg.from_address),
                "customer_id": msg.customer_id,
                "customer_name": name,
                "invoice_number": number,
                "stage": stage,
                "keyword": msg.keyword,
                "body": msg.body,
                "acknowledged_at": msg.acknowledged_at.isoformat() if msg.acknowledged_at else None,
            }
            for msg, number, name, stage in session.execute(stmt)
        ]

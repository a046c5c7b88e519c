"""A reminder call's facts from the database: the reminder, its customer and invoice, and
whether the payment link may be offered by SMS (digit 2)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from dunning.core.messages import ReminderData
from dunning.db.models import Customer, Invoice, Payment, Reminder, utcnow
from dunning.errors import DunningError
from dunning.ledger import reminder_data


@dataclass(frozen=True)
class Call:
    """One reminder call as the voice endpoint needs it."""

    data: ReminderData
    status: str  # the reminder's ledger status
    offer_link: bool  # digit 2 is on offer: SMS consent, no SMS opt-out, a link to send
    sms_allowed: bool  # SMS consent and no SMS opt-out
    voice_opt_out: bool


def link_on_offer(
    sms_consent: bool,
    sms_opt_out: bool,
    phone: str | None,
    payment_link: str | None,
    not_mobile: bool = False,
) -> bool:
    """Whether a call may offer the payment link by SMS: only with SMS consent, never after
    an SMS opt-out, and only when there is a mobile number and a web link to send."""
    link_ok = bool(payment_link) and str(payment_link).lower().startswith(("https://", "http://"))
    return bool(sms_consent) and not sms_opt_out and bool(phone) and not not_mobile and link_ok


def load_call(engine: Engine, reminder_id: int, as_of: dt.datetime | None = None) -> Call:
    """The call of voice reminder ``reminder_id`` with its facts at ``as_of`` (default now).

    Raises DunningError when there is no such voice reminder.
    """
    paid = (
        select(func.coalesce(func.sum(Payment.amount), 0))
        .where(Payment.invoice_id == Invoice.id)
        .correlate(Invoice)
        .scalar_subquery()
    )
    stmt = (
        select(Reminder, Invoice, Customer, paid.label("paid"))
        .join(Invoice, Invoice.id == Reminder.invoice_id)
        .join(Customer, Customer.customer_id == Reminder.customer_id)
        .where(Reminder.id == reminder_id, Reminder.channel == "voice")
    )
    with Session(engine) as session:
        row = session.execute(stmt).first()
        if row is None:
            raise DunningError(f"no voice reminder with id {reminder_id}")
        reminder, invoice, customer, total_paid = row
        return _call(reminder, invoice, customer, total_paid, as_of or utcnow())


def _call(
    reminder: Reminder, invoice: Invoice, customer: Customer, total_paid: object, as_of: dt.datetime
) -> Call:
    data = reminder_data(
        reminder_id=reminder.id,
        invoice_id=invoice.id,
        invoice_number=invoice.invoice_number,
        customer_id=customer.customer_id,
        stage=reminder.stage,
        channel="voice",
        segment=reminder.segment,
        tone=reminder.tone,
        customer_name=customer.name,
        email=customer.email,
        phone=customer.phone,
        locale=customer.locale,
        timezone=customer.timezone,
        country=customer.country,
        currency=invoice.currency,
        amount=invoice.amount,
        paid=total_paid,
        due_on=invoice.due_on,
        payment_link=invoice.payment_link,
        as_of=as_of,
    )
    return Call(
        data=data,
        status=reminder.status,
        offer_link=link_on_offer(
            customer.sms_consent,
            customer.sms_opt_out,
            customer.phone,
            invoice.payment_link,
            customer.not_mobile,
        ),
        sms_allowed=bool(customer.sms_consent) and not customer.sms_opt_out,
        voice_opt_out=customer.voice_opt_out,
    )

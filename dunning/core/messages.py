"""The reminder and message types every layer passes along (pure data, no I/O).

Data flow: the ledger claims reminders and hands out ``ReminderData`` (everything needed to
compose a message); ``dunning.render.compose`` turns it into an ``OutboundMessage``; a
channel (``dunning.channels.base.Channel``) sends a batch and returns a ``SendResult`` per
message; the ledger records them. A claim whose holder vanished is a ``StaleClaim`` until it
is settled.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class ReminderData:
    """One claimed reminder with the customer and invoice facts a message needs."""

    reminder_id: int
    invoice_id: int
    invoice_number: str
    customer_id: str
    # pre_due, due, overdue_1, overdue_2, final_notice, final_notice_r2.., payment_failed,
    # promise_broken
    stage: str
    channel: str  # "email" | "sms"
    segment: str | None
    tone: str | None  # e.g. friendly | neutral | firm (from the policy)
    customer_name: str | None
    email: str | None
    phone: str | None  # E.164
    locale: str  # e.g. de_DE
    timezone: str
    country: str
    currency: str
    amount: Decimal  # original invoice total
    balance_due: Decimal  # amount minus payments
    due_on: dt.date
    days_overdue: int  # negative before the due date
    payment_link: str | None
    # The latest agreement, a promise to pay (``dunning invoice promise``): the date promised,
    # the amount (None: the whole balance) and the day it was agreed; None when there is none.
    promise_to_pay_on: dt.date | None = None
    promise_amount: Decimal | None = None
    promise_made_on: dt.date | None = None
    # The template variant of the customer's experiment arm ("B": <stage>/email.<lang>.B.txt);
    # None: the control templates (dunning.experiments).
    variant: str | None = None


@dataclass
class OutboundMessage:
    """A rendered message ready for a channel."""

    reminder_id: int
    channel: str  # "email" | "sms"
    to: str  # email address or E.164 number
    text: str  # plain-text body (email) or the SMS body
    subject: str | None = None  # email only
    html: str | None = None  # email only
    template_key: str = ""  # e.g. "overdue_1/email.de" — the variant used
    locale: str = "en"
    headers: dict[str, str] = field(default_factory=dict)  # e.g. List-Unsubscribe
    custom_args: dict[str, str] = field(default_factory=dict)  # carries reminder_id
    warnings: list[str] = field(default_factory=list)  # e.g. SMS too long


@dataclass
class SendResult:
    """What a provider said about one message."""

    reminder_id: int
    ok: bool
    provider: str  # sendgrid | twilio | smtp | outbox
    provider_message_id: str | None = None
    error_code: str | None = None  # provider code, e.g. "21211", "http_400"
    error: str | None = None  # human reason, no secrets, personal data masked
    transient: bool = False  # worth retrying (429, 5xx, timeouts, connection errors)
    retry_after: float | None = None  # seconds, from Retry-After / X-RateLimit-Reset
    opt_out: bool = False  # provider says the recipient unsubscribed (Twilio 21610)
    invalid_address: bool = False  # e.g. Twilio 21211, hard bounce


@dataclass(frozen=True)
class StaleClaim:
    """A claim whose lease expired without a record: the sender may or may not have sent."""

    reminder_id: int
    channel: str
    to_address: str | None
    claimed_at: dt.datetime | None
    #: The lead's id when the row travelled in one message with others (one per customer).
    message_group: int | None = None

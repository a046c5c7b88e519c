"""Data protection: erase a customer's personal data, export it, and apply the retention policy.

Erasure keeps what accounting needs (invoices, payments, attempts, and every reminder row with
its stage, channel, status, amounts, counts and timestamps) and removes what identifies a
person: name, email, phone, message addresses and bodies, reply texts, and the raw webhook
payloads that mention them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.orm import Session

from dunning.config import get_settings
from dunning.db import check_ready, session_scope
from dunning.db.models import (
    Base,
    Customer,
    DeliveryEvent,
    InboundMessage,
    Invoice,
    Payment,
    PaymentAttempt,
    Reminder,
    WebhookInbox,
)
from dunning.errors import DunningError
from dunning.ledger.erase import drop_old_bodies, erase_reminders
from dunning.masking import scrub

#: Inbox rows whose payload the retention flow may drop: already applied (or deliberately
#: ignored). ``pending`` rows are still needed; ``error`` rows wait for an operator.
DONE_INBOX_STATUSES = ("applied", "ignored")
#: Search terms per query when matching webhook payloads: keeps every statement small.
TERMS_PER_QUERY = 100


#: Loggers of the provider SDKs that print request headers and bodies at DEBUG level.
SDK_LOGGERS = ("python_http_client.client", "twilio.http_client")
_AUTH = re.compile(r"(?i)(authorization'?\"?\s*[:=]\s*'?\"?)(bearer|basic)?\s*[^'\",}]+")


class RedactingFilter(logging.Filter):
    """Masks credentials and personal data in a log record before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always true (the record is kept), after rewriting its message."""
        message = _AUTH.sub(lambda m: f"{m.group(1)}{m.group(2) or ''} ***", record.getMessage())
        record.msg, record.args = scrub(message), None
        return True


def redact_sdk_logging() -> None:
    """Nothing; installs RedactingFilter on the SDK loggers that print request headers
    (SendGrid's python_http_client logs ``Authorization: Bearer <API key>`` and the mail body
    at DEBUG). Idempotent."""
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


class UnknownCustomer(DunningError):
    """The customer id names no customer."""


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure changed, row counts by table."""

    customer_id: str
    erased_at: dt.datetime
    reminders: int
    cancelled_reminders: int
    inbound_messages: int
    webhook_payloads: int

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return {**asdict(self), "erased_at": self.erased_at.isoformat()}


@dataclass(frozen=True)
class RetentionCounts:
    """Rows whose personal text the retention policy removed, by kind."""

    reminder_bodies: int
    inbound_bodies: int
    webhook_payloads: int

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict."""
        return asdict(self)


def _customer(session: Session, customer_id: str) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise UnknownCustomer(
            f"customer {customer_id!r} does not exist; check the id "
            "(`dunning customer export` takes the same id as the customers import)"
        )
    return customer


T = TypeVar("T")


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _strings(value: Any) -> Iterator[tuple[str, str]]:
    """Every (key, scalar text) pair in a decoded JSON document, at any depth."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        key, item = stack.pop()
        if isinstance(item, dict):
            stack.extend((str(k), v) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((key, v) for v in item)
        elif item is not None:
            yield key, str(item)


def payload_mentions(
    payload: str, addresses: set[str], message_ids: set[str], reminder_ids: set[str]
) -> bool:
    """Whether a raw webhook payload concerns the customer with these identifiers.

    A payload carrying a ``reminder_id`` custom argument is the customer's exactly when that
    id is one of their reminders: every recipient of one SendGrid bulk request shares the
    request's X-Message-Id, so the message id would also match the other customers' events.
    Otherwise it matches an email/phone (case-insensitive) or a provider message id (SendGrid
    appends ``.filter…`` to its ids, Twilio status events are keyed ``SID:status``).
    """
    try:
        doc = json.loads(payload)
    except json.JSONDecodeError:
        lowered = payload.lower()
        return any(a in lowered for a in addresses) or any(m in payload for m in message_ids)
    strings = list(_strings(doc))
    tagged = [text.strip() for key, text in strings if key == "reminder_id"]
    if tagged:
        return any(rid in reminder_ids for rid in tagged)
    for key, text in strings:
        if text.strip().lower() in addresses:
            return True
        if text.split(".", 1)[0].split(":", 1)[0] in message_ids:
            return True
        if key == "reminder_id" and text.strip() in reminder_ids:
            return True
    return False


def _search_terms(addresses: set[str], message_ids: set[str], reminder_ids: set[str]) -> list[str]:
    # A cheap SQL prefilter; payload_mentions decides. Both JSON spellings of reminder_id.
    terms = sorted(addresses) + sorted(message_ids)
    for rid in sorted(reminder_ids):
        terms += [f'"reminder_id": "{rid}"', f'"reminder_id": {rid}']
    return [t for t in terms if t]


def _matching_inbox_ids(
    session: Session, addresses: set[str], message_ids: set[str], reminder_ids: set[str]
) -> list[int]:
    found: dict[int, str] = {}
    lowered = func.lower(WebhookInbox.payload)
    for terms in _chunks(_search_terms(addresses, message_ids, reminder_ids), TERMS_PER_QUERY):
        clause = or_(*(lowered.contains(t.lower(), autoescape=True) for t in terms))
        rows = session.execute(
            select(WebhookInbox.id, WebhookInbox.payload).where(
                WebhookInbox.payload.is_not(None), clause
            )
        )
        found.update({row.id: row.payload for row in rows})
    return sorted(
        i for i, p in found.items() if payload_mentions(p, addresses, message_ids, reminder_ids)
    )


def erase_customer(engine: Engine, customer_id: str, now: dt.datetime) -> ErasureReport:
    """The report of removing one customer's personal data, keeping accounting facts.

    Idempotent: erasing twice changes nothing more and keeps the first ``erased_at``.
    Raises UnknownCustomer for an id that names no customer.
    """
    check_ready(engine)
    with session_scope(engine) as session:
        customer = _customer(session, customer_id)
        addresses = {a.strip().lower() for a in (customer.email, customer.phone) if a}
        reminders = list(
            session.execute(
                select(Reminder.id, Reminder.provider_message_id, Reminder.to_address).where(
                    Reminder.customer_id == customer_id
                )
            )
        )
        addresses |= {r.to_address.strip().lower() for r in reminders if r.to_address}
        inbound_from = session.scalars(
            select(InboundMessage.from_address).where(
                InboundMessage.customer_id == customer_id, InboundMessage.from_address.is_not(None)
            )
        )
        addresses |= {a.strip().lower() for a in inbound_from if a}
        message_ids = {r.provider_message_id for r in reminders if r.provider_message_id}
        reminder_ids = {str(r.id) for r in reminders}
        inbox_ids = _matching_inbox_ids(session, addresses, message_ids, reminder_ids)

        customer.name = customer.email = customer.phone = None
        customer.erased_at = customer.erased_at or now
        erased_at = customer.erased_at
        cleared, cancelled = erase_reminders(session, customer_id)
        inbound = session.execute(
            update(InboundMessage)
            .where(InboundMessage.customer_id == customer_id)
            .values(body=None, from_address=None)
        )
        for ids in _chunks(inbox_ids, TERMS_PER_QUERY):
            # A pending row without its payload cannot be applied: close it with a reason.
            session.execute(
                update(WebhookInbox)
                .where(WebhookInbox.id.in_(ids), WebhookInbox.status == "pending")
                .values(status="ignored", error="payload erased with its customer")
            )
            session.execute(
                update(WebhookInbox).where(WebhookInbox.id.in_(ids)).values(payload=None)
            )
    return ErasureReport(
        customer_id=customer_id,
        erased_at=erased_at,
        reminders=cleared,
        cancelled_reminders=cancelled,
        inbound_messages=_count(inbound),
        webhook_payloads=len(inbox_ids),
    )


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _rows(session: Session, model: type[Base], where: Any) -> list[dict[str, Any]]:
    keys = model.__mapper__.primary_key
    rows = session.execute(select(model).where(where).order_by(*keys))
    return [
        {c.key: _jsonable(getattr(obj, c.key)) for c in model.__mapper__.column_attrs}
        for obj in rows.scalars()
    ]


def export_customer(engine: Engine, customer_id: str) -> dict[str, Any]:
    """One JSON-ready document with everything stored about a customer.

    Holds the customer, their invoices, payments, payment attempts, reminders (with the
    delivery events of each) and inbound messages. Raises UnknownCustomer for an unknown id.
    """
    check_ready(engine)
    with session_scope(engine) as session:
        _customer(session, customer_id)
        invoice_ids = list(
            session.scalars(select(Invoice.id).where(Invoice.customer_id == customer_id))
        )
        reminder_ids = list(
            session.scalars(select(Reminder.id).where(Reminder.customer_id == customer_id))
        )
        return {
            "customer": _rows(session, Customer, Customer.customer_id == customer_id)[0],
            "invoices": _rows(session, Invoice, Invoice.customer_id == customer_id),
            "payments": _rows(session, Payment, Payment.invoice_id.in_(invoice_ids)),
            "payment_attempts": _rows(
                session, PaymentAttempt, PaymentAttempt.invoice_id.in_(invoice_ids)
            ),
            "reminders": _rows(session, Reminder, Reminder.customer_id == customer_id),
            "delivery_events": _rows(
                session, DeliveryEvent, DeliveryEvent.reminder_id.in_(reminder_ids)
            ),
            "inbound_messages": _rows(
                session, InboundMessage, InboundMessage.customer_id == customer_id
            ),
        }


def _older(column: Any, fallback: Any, cutoff: dt.datetime) -> Any:
    # Spelled out instead of COALESCE so the UTC bind processing applies to each column.
    return or_(
        and_(column.is_not(None), column < cutoff), and_(column.is_(None), fallback < cutoff)
    )


def apply_retention(
    engine: Engine, now: dt.datetime, body_days: int | None = None, payload_days: int | None = None
) -> RetentionCounts:
    """The counts of message bodies and webhook payloads dropped for being past retention.

    Reminder subjects/bodies older than ``body_days`` (by sent_at, else created_at), inbound
    SMS bodies older than ``body_days`` (by received_at), and payloads of applied/ignored inbox
    rows older than ``payload_days`` (by applied_at, else received_at). Defaults come from
    DUNNING_RETENTION_BODY_DAYS (90) and DUNNING_RETENTION_PAYLOAD_DAYS (30).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    settings = get_settings().privacy
    body_cutoff = now - dt.timedelta(
        days=settings.retention_body_days if body_days is None else body_days
    )
    payload_cutoff = now - dt.timedelta(
        days=settings.retention_payload_days if payload_days is None else payload_days
    )
    check_ready(engine)
    with session_scope(engine) as session:
        bodies = drop_old_bodies(session, body_cutoff)
        inbound = session.execute(
            update(InboundMessage)
            .where(
                InboundMessage.received_at < body_cutoff,
                InboundMessage.body.is_not(None),
            )
            .values(body=None)
        )
        payloads = session.execute(
            update(WebhookInbox)
            .where(
                WebhookInbox.status.in_(DONE_INBOX_STATUSES),
                _older(WebhookInbox.applied_at, WebhookInbox.received_at, payload_cutoff),
                WebhookInbox.payload.is_not(None),
            )
            .values(payload=None)
        )
    return RetentionCounts(
        reminder_bodies=bodies,
        inbound_bodies=_count(inbound),
        webhook_payloads=_count(payloads),
    )

"""SQLAlchemy 2.0 models: customers, invoices, payments, payment_attempts, the reminders
ledger, delivery_events, inbound_messages, webhook_inbox, reminder_runs and the
segmentation snapshot customer_segments.

Conventions: money is Numeric (Decimal in Python) quantised to the currency's exponent;
instants are timezone-aware UTC (``UTCDateTime``); invoice dates are ``Date``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false

from dunning import sharding
from dunning.core.status import ReminderStatus


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC instant on every backend (SQLite drops tzinfo; this restores it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored: every instant must be timezone-aware")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    """The current instant, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


MONEY = Numeric(18, 4, asdecimal=True)

INVOICE_STATUSES = ("open", "paid", "void", "disputed")
ATTEMPT_OUTCOMES = ("failed", "succeeded")
CHANNELS = ("email", "sms", "voice")
# The ledger's states, declared once in dunning.core.status (ReminderStatus).
REMINDER_STATUSES = tuple(str(s) for s in ReminderStatus)


class Base(DeclarativeBase):
    pass


def _customer_shard_key(context: Any) -> int:
    """The inserted row's shard key, computed from its customer_id.

    A column default rather than a value set by each writer: ORM adds and Core bulk inserts
    (importers, seed, tests) all run it per row, so no insert path can forget the key.
    """
    return sharding.shard_key(str(context.get_current_parameters()["customer_id"]))


class Customer(Base):
    __tablename__ = "customers"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # zlib.crc32(customer_id): a sharded run handles the customers with shard_key % N == k.
    shard_key: Mapped[int] = mapped_column(
        BigInteger, nullable=False, index=True, default=_customer_shard_key
    )
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    email_invalid: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)  # E.164
    # The phone is no SMS destination: typed fixed-line (or toll-free...) by phonenumbers, or
    # given with an extension. The plan skips SMS with reason not_mobile.
    not_mobile: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), nullable=False
    )
    country: Mapped[str] = mapped_column(String(2), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    locale: Mapped[str] = mapped_column(String(16), nullable=False)
    # ISO 3166-2 subdivision (AU-NSW) for regional public holidays; NULL: none known.
    region: Mapped[str | None] = mapped_column(String(16))
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    email_opt_out: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    sms_opt_out: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # Calls need their own consent; pressing 9 in a reminder call sets voice_opt_out.
    voice_consent: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    voice_opt_out: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    paused_until: Mapped[dt.date | None] = mapped_column(Date)
    # Where the record lives (a sources.toml name; `files` for CSV/Excel imports and the seed)
    # and its id there; a customer_id belongs to one source only.
    source: Mapped[str] = mapped_column(
        String(64), nullable=False, default="files", server_default="files", index=True
    )
    source_id: Mapped[str | None] = mapped_column(String(200))
    # Set by `dunning customer pause`: sources may lengthen the pause, never shorten it
    # (dunning.core.holds).
    paused_by_operator: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("status IN ('open','paid','void','disputed')", name="ck_invoices_status"),
        CheckConstraint("amount >= 0", name="ck_invoices_amount"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    invoice_number: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.customer_id"), index=True, nullable=False
    )
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    issued_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    due_on: Mapped[dt.date] = mapped_column(Date, nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open", index=True)
    payment_link: Mapped[str | None] = mapped_column(String(2048))
    promise_to_pay_on: Mapped[dt.date | None] = mapped_column(Date)
    # Set by an SMS reply "PAID": reminders pause until then and an operator reviews.
    paused_until: Mapped[dt.date | None] = mapped_column(Date)
    review_reason: Mapped[str | None] = mapped_column(String(200))
    # As for customers: the source the invoice is synced from and its id there (Stripe's in_...).
    source: Mapped[str] = mapped_column(
        String(64), nullable=False, default="files", server_default="files", index=True
    )
    source_id: Mapped[str | None] = mapped_column(String(200))
    # Operator holds (dunning.core.holds): sources never undo them; a source status of
    # paid or void still wins over a dispute.
    paused_by_operator: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    disputed_by_operator: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # The latest promise to pay: amount (None = the whole balance) and the day it was agreed.
    promise_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    promise_made_on: Mapped[dt.date | None] = mapped_column(Date)
    # Set once, by the run that found the reminder ladder exhausted; that run emits the event
    # dunning.invoice.escalated for a person or a collections hand-off (never twice).
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True, nullable=False)
    amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False)  # negative for refunds
    paid_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    source: Mapped[str] = mapped_column(String(32), nullable=False, default="import")
    # Natural key that makes re-imports and replayed webhooks idempotent.
    external_id: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class PaymentAttempt(Base):
    __tablename__ = "payment_attempts"
    __table_args__ = (
        CheckConstraint("outcome IN ('failed','succeeded')", name="ck_attempts_outcome"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True, nullable=False)
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32), nullable=False, default="import")
    external_id: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Reminder(Base):
    """The ledger: at most one row, hence at most one message, per (invoice, stage, channel)."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint(
            "invoice_id", "stage", "channel", name="uq_reminders_invoice_stage_channel"
        ),
        Index("ix_reminders_status_lease", "status", "lease_expires_at"),
        # Declared from the enum (migration 0015 writes the same list out).
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in REMINDER_STATUSES) + ")",
            name="ck_reminders_status",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), nullable=False)
    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.customer_id"), index=True, nullable=False
    )
    stage: Mapped[str] = mapped_column(String(48), nullable=False)
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    segment: Mapped[str | None] = mapped_column(String(32))
    tone: Mapped[str | None] = mapped_column(String(32))  # from the policy (friendly, firm..)
    template: Mapped[str | None] = mapped_column(String(128))  # template variant used
    locale: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(
        String(24), nullable=False, default=str(ReminderStatus.PLANNED)
    )
    reason: Mapped[str | None] = mapped_column(String(200))  # why skipped/failed/unknown
    error_code: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    planned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    not_before: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The instant the planning run acted as of: the reminder's logical time, which the
    # planner compares with payments and attempts, so re-running an as-of is idempotent.
    planned_for: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(128), index=True)
    to_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(400))
    body: Mapped[str | None] = mapped_column(Text)
    balance_due: Mapped[Decimal | None] = mapped_column(MONEY)
    currency: Mapped[str | None] = mapped_column(String(3))
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    clicked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    bounced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    replied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # first payment after send
    # Voice reminders: how the call ended (completed, voicemail, no-answer, busy, failed).
    call_outcome: Mapped[str | None] = mapped_column(String(16))
    # The A/B test the reminder takes part in (dunning.experiments), the customer's arm, and
    # the template variant it is rendered with (None: the control templates).
    experiment: Mapped[str | None] = mapped_column(String(48), index=True)
    arm: Mapped[str | None] = mapped_column(String(48))
    variant: Mapped[str | None] = mapped_column(String(16))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    # One message per customer (policy consolidate = "customer"): the id of the lead reminder
    # of the one message this row travels in, set in the claim that claimed the whole group;
    # every row of the group shares its provider message id. NULL: a message of its own.
    message_group: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


class DeliveryEvent(Base):
    __tablename__ = "delivery_events"
    __table_args__ = (
        UniqueConstraint("provider", "provider_event_id", name="uq_delivery_events_provider_event"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reminder_id: Mapped[int | None] = mapped_column(ForeignKey("reminders.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    provider_event_id: Mapped[str] = mapped_column(String(200), nullable=False)
    event_type: Mapped[str] = mapped_column(String(32), nullable=False)
    error_code: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(500))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class InboundMessage(Base):
    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    provider_message_id: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    from_address: Mapped[str | None] = mapped_column(String(320), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    reminder_id: Mapped[int | None] = mapped_column(ForeignKey("reminders.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    body: Mapped[str | None] = mapped_column(Text)
    keyword: Mapped[str | None] = mapped_column(String(16))  # stop, start, paid, or None
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # A reply for review (free text or PAID) is open until an operator acknowledges it.
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))


class WebhookInbox(Base):
    """Verified webhook requests, stored raw before anything is applied."""

    __tablename__ = "webhook_inbox"
    __table_args__ = (
        UniqueConstraint("provider", "event_id", name="uq_webhook_inbox_provider_event"),
        Index("ix_webhook_inbox_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    event_id: Mapped[str] = mapped_column(String(200), nullable=False)
    event_type: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    error: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    applied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Automatic retries of a row in error (track-responses): how many so far and when next.
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ReminderRun(Base):
    """One row per reminder flow run: its as-of instant and outcome counts."""

    __tablename__ = "reminder_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    as_of: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    dry_run: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A shard run's outcomes in compact form (RunReport.to_compact): how its coordinator, on
    # any machine, builds the whole run's report from the database every worker shares.
    outcomes: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class SourceState(Base):
    """One row per source in sources.toml: its cursor and the outcome of its last sync."""

    __tablename__ = "source_state"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    # Opaque to everything but the source's own code (JSON text: timestamps, event ids).
    cursor: Mapped[str | None] = mapped_column(Text)
    # What the freshness guard reads: a run does not send on data older than max_age_minutes.
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class SourceQuarantine(Base):
    """A record a source sent that failed validation: kept out of the tables, with the reason.

    Cleared when a later sync brings the record valid (or it disappears from the source).
    """

    __tablename__ = "source_quarantine"
    __table_args__ = (
        UniqueConstraint("source", "record_type", "source_id", name="uq_source_quarantine"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64), nullable=False)
    record_type: Mapped[str] = mapped_column(String(32), nullable=False)
    source_id: Mapped[str] = mapped_column(String(200), nullable=False)
    reason: Mapped[str] = mapped_column(String(1000), nullable=False)
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class OperatorAction(Base):
    """The audit trail: one row per operator action (CLI or operator-action flow run)."""

    __tablename__ = "operator_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # "os user alice" or "prefect flow run <name>"; flow_run_id for the latter.
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    target: Mapped[str] = mapped_column(String(200), nullable=False)  # "invoice INV-1"
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    invoice_id: Mapped[int | None] = mapped_column(Integer, index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ExperimentPromotion(Base):
    """An experiment ended by ``dunning experiments promote``: its winning arm applies to
    every reminder of its stage from then on (the planner consults this table)."""

    __tablename__ = "experiment_promotions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment: Mapped[str] = mapped_column(String(48), unique=True, nullable=False)
    arm: Mapped[str] = mapped_column(String(48), nullable=False)
    stage: Mapped[str] = mapped_column(String(48), nullable=False)
    variant: Mapped[str | None] = mapped_column(String(16))
    promoted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)


class OutboundEvent(Base):
    """The transactional outbox: one row per business event, written in the transaction of
    the change that caused it (docs/outbound.md). ``event_id`` is the Standard Webhooks
    ``webhook-id`` every subscriber sees for it, on every attempt."""

    __tablename__ = "outbound_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class OutboundSubscriber(Base):
    """A receiver of outbound events: an https URL (or loopback), its event types and its
    ``whsec_`` secret. The subscriber from DUNNING_OUTBOUND_WEBHOOK_URL has ``source='env'``
    and no stored secret (read from DUNNING_OUTBOUND_WEBHOOK_SECRET when sending)."""

    __tablename__ = "outbound_subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    events: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    secret: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(8), nullable=False, default="cli")
    # Events with a larger id than this are not yet queued for the subscriber.
    cursor: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


OUTBOUND_DELIVERY_STATUSES = ("pending", "delivered", "dead")


class OutboundDelivery(Base):
    """One event for one subscriber: pending (with next_attempt_at), delivered or dead
    (dead letter after the maximum attempts)."""

    __tablename__ = "outbound_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "subscriber_id", name="uq_outbound_delivery"),
        CheckConstraint(
            "status IN ('pending', 'delivered', 'dead')", name="ck_outbound_delivery_status"
        ),
        Index("ix_outbound_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("outbound_events.id", ondelete="CASCADE"), nullable=False
    )
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("outbound_subscribers.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(300))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class OutboundActivity(Base):
    """One record written in an external system for an outbound event: a HubSpot note, a
    Salesforce Task, a Xero invoice history note. ``key`` is ``reminder:<id>`` (one per sent
    reminder) or ``reply:<event id>``; the unique (target, key) makes a repeated delivery of
    the same event, a replay or a second run for the same as-of create nothing new."""

    __tablename__ = "outbound_activities"
    __table_args__ = (UniqueConstraint("target", "key", name="uq_outbound_activity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(16), nullable=False)
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    external_id: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class CustomerSegment(Base):
    """The segmentation snapshot: one row per customer with the payment-history features and
    the segment the ``segment-customers`` flow computed (dunning.segment_snapshot).

    ``as_of`` is the instant the features describe (UTC); ``previous_segment`` the customer's
    segment in the snapshot before (NULL: first time), for the movement between snapshots;
    ``policy_fingerprint`` the policy's segmentation (rules, fallback, large-overdue marks)
    the segment came from: a row of another fingerprint is not used by a run.
    """

    __tablename__ = "customer_segments"

    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.customer_id", ondelete="CASCADE"), primary_key=True
    )
    segment: Mapped[str] = mapped_column(String(64), nullable=False)
    previous_segment: Mapped[str | None] = mapped_column(String(64))
    on_time_share: Mapped[float | None] = mapped_column(Float)
    mean_days_late: Mapped[float | None] = mapped_column(Float)
    p90_days_late: Mapped[float | None] = mapped_column(Float)
    failed_attempts_90d: Mapped[int] = mapped_column(Integer, nullable=False)
    open_invoices: Mapped[int] = mapped_column(Integer, nullable=False)
    oldest_open_days_overdue: Mapped[int] = mapped_column(Integer, nullable=False)
    tenure_days: Mapped[int] = mapped_column(Integer, nullable=False)
    invoice_count: Mapped[int] = mapped_column(Integer, nullable=False)
    settled_count: Mapped[int] = mapped_column(Integer, nullable=False)
    large_overdue: Mapped[bool] = mapped_column(Boolean, nullable=False)
    as_of: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    policy_fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)

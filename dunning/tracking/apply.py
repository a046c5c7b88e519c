"""Apply the webhook inbox to the ledger: one row, one transaction, at most once."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from dunning.config.webhooks import WebhookSettings
from dunning.db import session_scope
from dunning.db.models import Reminder, WebhookInbox, utcnow
from dunning.ledger.events import (
    apply_outcome,
    customers_by_email,
    record_call_outcome,
    record_event,
    rowcount,
    settle_ambiguous,
    travelling_with,
)
from dunning.ledger.payments import PaymentError
from dunning.tracking.replies import apply_inbound
from dunning.tracking.status import (
    CALL_PROGRESS,
    call_outcome_for,
    sendgrid_outcome,
    twilio_outcome,
)
from dunning.tracking.stripe_events import STRIPE_TYPES, Unlinked, apply_stripe_event

log = logging.getLogger("dunning.tracking")


class Ignored(Exception):
    """An inbox event that is valid but concerns nothing we track."""


@dataclass
class TrackingSummary:
    """Counts of what a tracking run changed, by kind (delivered, opt_out_sms, payment...)."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, kinds: list[str]) -> None:
        """Count each kind once."""
        self.counts.update(kinds)

    def merge(self, other: TrackingSummary) -> TrackingSummary:
        """A summary holding the counts of both."""
        return TrackingSummary(self.counts + other.counts)

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain, sorted dict."""
        return dict(sorted(self.counts.items()))


@dataclass(frozen=True)
class RetryPolicy:
    """How often a row in ``error`` is applied again before it waits for a person.

    After its n-th failure a row is retried ``base_seconds * 2**(n-1)`` later (5, 10, 20, 40
    minutes with the defaults); after ``max_attempts`` failures it stays in ``error`` until
    ``dunning inbox retry``. Why retry at all: the commonest error is a payment for an invoice
    a source has not synced yet, which resolves itself within minutes.
    """

    max_attempts: int = 5
    base_seconds: int = 300

    def next_attempt(self, failures: int, now: dt.datetime) -> dt.datetime | None:
        """When a row that failed ``failures`` times is retried, None when it is not."""
        if failures >= self.max_attempts:
            return None
        return now + dt.timedelta(seconds=self.base_seconds * 2 ** max(failures - 1, 0))


def retry_policy(settings: WebhookSettings) -> RetryPolicy:
    """The retry policy of ``settings`` (DUNNING_INBOX_MAX_ATTEMPTS, _RETRY_BASE_SECONDS)."""
    return RetryPolicy(settings.inbox_max_attempts, settings.inbox_retry_base_seconds)


def requeue_due_errors(engine: Engine, now: dt.datetime) -> int:
    """How many inbox rows in ``error`` whose retry time has come went back to ``pending``."""
    with session_scope(engine) as session:
        return rowcount(
            session.execute(
                update(WebhookInbox)
                .where(
                    WebhookInbox.status == "error",
                    WebhookInbox.next_attempt_at.is_not(None),
                    WebhookInbox.next_attempt_at <= now,
                )
                .values(status="pending", next_attempt_at=None)
            )
        )


def apply_inbox(
    engine: Engine,
    limit: int | None = None,
    reply_pause_days: int = 14,
    now: dt.datetime | None = None,
    *,
    ids: list[int] | None = None,
    retry: RetryPolicy | None = None,
) -> TrackingSummary:
    """The summary of applying pending inbox rows (oldest first, or only ``ids``) to the
    ledger. With ``retry``, rows in ``error`` whose retry time has come are applied again
    (counted as ``retried``), and a row that fails gets its next retry time."""
    summary = TrackingSummary()
    now = now or utcnow()
    policy = retry or RetryPolicy(max_attempts=0)
    if retry is not None and ids is None:
        retried = requeue_due_errors(engine, now)
        if retried:
            summary.counts["retried"] = retried
    with session_scope(engine) as session:
        stmt = (
            select(WebhookInbox.id)
            .where(WebhookInbox.status == "pending")
            .order_by(WebhookInbox.id)
        )
        if ids is not None:
            stmt = stmt.where(WebhookInbox.id.in_(ids))
        pending = list(session.scalars(stmt.limit(limit) if limit else stmt))
    for inbox_id in pending:
        with session_scope(engine) as session:
            summary.add(_apply_one(session, inbox_id, reply_pause_days, now, policy))
    return summary


def _apply_one(
    session: Session, inbox_id: int, pause_days: int, now: dt.datetime, retry: RetryPolicy
) -> list[str]:
    # Claiming by a conditional UPDATE makes two overlapping runs apply a row only once; the
    # final status is written in the same transaction.
    claimed = rowcount(
        session.execute(
            update(WebhookInbox)
            .where(WebhookInbox.id == inbox_id, WebhookInbox.status == "pending")
            .values(status="applied", applied_at=now)
        )
    )
    if not claimed:
        return []
    row = session.get_one(WebhookInbox, inbox_id)
    try:
        with session.begin_nested():
            kinds = _dispatch(session, row, pause_days, now)
    except (Ignored, Unlinked) as exc:
        row.status, row.error = "ignored", str(exc)[:500]
        return ["ignored"]
    except (PaymentError, ValueError, KeyError, TypeError) as exc:
        # Bad data from a verified sender: keep it for the operator, never crash the run.
        row.status, row.error = "error", str(exc)[:500] or type(exc).__name__
        row.attempts = (row.attempts or 0) + 1
        row.next_attempt_at = retry.next_attempt(row.attempts, now)
        log.warning("inbox row %s (%s %s): %s", inbox_id, row.provider, row.event_type, row.error)
        return ["error"]
    return kinds or ["no_change"]


def _dispatch(session: Session, row: WebhookInbox, pause_days: int, now: dt.datetime) -> list[str]:
    payload: dict[str, Any] = json.loads(row.payload or "{}")
    if row.provider == "sendgrid":
        return apply_sendgrid(session, payload, row.received_at)
    if row.provider == "twilio" and (row.event_type or "").startswith("call_"):
        return apply_twilio_call(session, payload, row.received_at)
    if row.provider == "twilio" and row.event_type == "inbound":
        return apply_inbound(session, payload, row.received_at, pause_days, now)
    if row.provider == "twilio":
        return apply_twilio_status(
            session,
            payload.get("MessageSid") or payload["SmsSid"],
            row.event_type or "",
            payload.get("ErrorCode") or None,
            row.received_at,
            payload.get("dunning_reminder_id"),
        )
    if row.provider == "stripe":
        if row.event_type not in STRIPE_TYPES:
            raise Ignored(f"stripe event type {row.event_type} is not tracked")
        return apply_stripe_event(session, payload)
    raise Ignored(f"unknown provider {row.provider}")


def apply_sendgrid(session: Session, event: dict[str, Any], received: dt.datetime) -> list[str]:
    """The kinds of change one SendGrid event made."""
    outcome = sendgrid_outcome(event)
    if outcome is None:
        raise Ignored(f"sendgrid event {event.get('event')} is not tracked")
    reminder = _sendgrid_reminder(session, event)
    stamp = event.get("timestamp")
    at = dt.datetime.fromtimestamp(int(stamp), dt.UTC) if stamp else received
    customers = (
        [reminder.customer_id]
        if reminder
        else customers_by_email(session, str(event.get("email") or ""))
    )
    if reminder is None and not customers:
        raise Ignored("no reminder matches reminder_id/sg_message_id and no customer the email")
    if not record_event(
        session,
        reminder,
        "sendgrid",
        str(event["sg_event_id"]),
        str(event["event"]),
        at,
        detail=outcome.reason,
    ):
        return ["duplicate"]
    message_id = str(event.get("sg_message_id") or "").split(".", 1)[0] or None
    settled = settle_ambiguous(session, reminder, outcome, "sendgrid", message_id, at)
    kinds = settled + apply_outcome(session, reminder, customers, outcome, at)
    for other in travelling_with(session, reminder):
        kinds += settle_ambiguous(session, other, outcome, "sendgrid", message_id, at)
        kinds += apply_outcome(session, other, [], outcome, at)
    return kinds


def _sendgrid_reminder(session: Session, event: dict[str, Any]) -> Reminder | None:
    # custom_args arrive as top-level event fields; the message id is the fallback.
    rid = event.get("reminder_id")
    if rid is not None and str(rid).isdigit():
        found = session.get(Reminder, int(rid))
        if found is not None:
            return found
    message_id = str(event.get("sg_message_id") or "").split(".", 1)[0]
    if not message_id:
        return None
    return session.scalar(select(Reminder).where(Reminder.provider_message_id == message_id))


def apply_twilio_status(
    session: Session,
    sid: str,
    status: str,
    error_code: str | None,
    at: dt.datetime,
    reminder_id: str | None = None,
) -> list[str]:
    """The kinds of change a Twilio message status (callback or poll) made.

    The reminder is the one holding ``sid``; else ``reminder_id`` (from our status callback
    URL) names an SMS reminder without a sid yet, whose send timed out before Twilio's answer.
    """
    outcome = twilio_outcome(status, error_code)
    if outcome is None:
        raise Ignored(f"twilio status {status} is not tracked")
    reminder = session.scalar(select(Reminder).where(Reminder.provider_message_id == sid))
    if reminder is None and reminder_id and str(reminder_id).isdigit():
        named = session.get(Reminder, int(reminder_id))
        if named is not None and named.channel == "sms" and named.provider_message_id is None:
            reminder = named
    if reminder is None:
        raise Ignored(f"no reminder has MessageSid {sid}")
    if not record_event(
        session,
        reminder,
        "twilio",
        f"{sid}:{status}",
        status,
        at,
        error_code=error_code,
        detail=outcome.reason,
    ):
        return ["duplicate"]
    settled = settle_ambiguous(session, reminder, outcome, "twilio", sid, at)
    kinds = settled + apply_outcome(
        session, reminder, [reminder.customer_id], outcome, at, error_code
    )
    for other in travelling_with(session, reminder):
        kinds += settle_ambiguous(session, other, outcome, "twilio", sid, at)
        kinds += apply_outcome(session, other, [], outcome, at, error_code)
    return kinds


def apply_twilio_call(session: Session, fields: dict[str, Any], received: dt.datetime) -> list[str]:
    """The kinds of change a call's status callback made: the reminder's ``call_outcome``
    (completed, voicemail, no-answer, busy, failed) and its ledger status."""
    sid, status = str(fields["CallSid"]), str(fields.get("CallStatus") or "")
    found = call_outcome_for(status, fields.get("AnsweredBy"))
    if found is None and status.lower() not in CALL_PROGRESS:
        raise Ignored(f"twilio call status {status} is not tracked")
    reminder = session.scalar(
        select(Reminder).where(Reminder.provider_message_id == sid, Reminder.channel == "voice")
    )
    if reminder is None:
        raise Ignored(f"no voice reminder has CallSid {sid}")
    if not record_event(
        session,
        reminder,
        "twilio",
        f"{sid}:{status}",
        f"call_{status}",
        received,
        detail=fields.get("AnsweredBy"),
    ):
        return ["duplicate"]
    if found is None:
        return []
    outcome_name, outcome = found
    kinds = [f"call_{outcome_name}"]
    record_call_outcome(reminder, outcome_name)
    return kinds + apply_outcome(session, reminder, [reminder.customer_id], outcome, received)

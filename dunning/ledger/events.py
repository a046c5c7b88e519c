"""Ledger updates from delivery events, polling and payments (over a SQLAlchemy session)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, CursorResult, func, select, update
from sqlalchemy.orm import Session

from dunning.core.skip import SkipReason
from dunning.core.status import AMBIGUOUS, PENDING, TIMESTAMP_COLUMN, Outcome, moves_forward
from dunning.core.status import ReminderStatus as S
from dunning.db.models import Customer, DeliveryEvent, Reminder
from dunning.ledger.outbox import STATUS_EVENTS, Event, emit


def rowcount(result: Any) -> int:
    """The rows an UPDATE matched (typed access to ``CursorResult.rowcount``)."""
    return int(result.rowcount or 0) if isinstance(result, CursorResult) else 0


def record_event(
    session: Session,
    reminder: Reminder | None,
    provider: str,
    event_id: str,
    event_type: str,
    occurred_at: dt.datetime,
    error_code: str | None = None,
    detail: str | None = None,
) -> bool:
    """Whether the delivery event was new (False: already recorded, nothing to do)."""
    exists = session.scalar(
        select(DeliveryEvent.id).where(
            DeliveryEvent.provider == provider, DeliveryEvent.provider_event_id == event_id
        )
    )
    if exists is not None:
        return False
    session.add(
        DeliveryEvent(
            reminder_id=reminder.id if reminder else None,
            provider=provider,
            provider_event_id=event_id[:200],
            event_type=event_type[:32],
            error_code=error_code,
            detail=detail[:500] if detail else None,
            occurred_at=occurred_at,
        )
    )
    session.flush()
    return True


def advance(
    reminder: Reminder,
    status: str,
    at: dt.datetime,
    reason: str | None = None,
    error_code: str | None = None,
) -> bool:
    """Whether ``reminder`` moved to ``status``; its timestamp is set either way (first only)."""
    column = TIMESTAMP_COLUMN.get(status)
    if column and getattr(reminder, column) is None:
        setattr(reminder, column, at)
    if not moves_forward(reminder.status, status):
        return False
    reminder.status = status
    if reason:
        reminder.reason = reason[:200]
    if error_code:
        reminder.error_code = error_code[:64]
    return True


def record_call_outcome(reminder: Reminder, outcome: str) -> bool:
    """Whether ``reminder`` (a voice reminder) took ``outcome`` (completed, voicemail,
    no-answer, busy, failed) as its ``call_outcome``: the first outcome stays."""
    if reminder.call_outcome is not None:
        return False
    reminder.call_outcome = outcome
    return True


def resolve_reminder(
    reminder: Reminder, *, as_sent: bool, at: dt.datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(before, after) of the fields an operator's resolution of an ``unknown`` reminder (or a
    claim whose lease expired) changed.

    As sent: ``sent`` (``sent_at`` its claim time, else ``at``), so the next plan treats the
    stage as done. Otherwise back to ``planned`` with the claim, error and reason cleared, so
    the next run sends it if it is still due. The caller checks the reminder may be resolved.
    """
    if as_sent:
        values: dict[str, Any] = {
            "status": S.SENT,
            "sent_at": reminder.claimed_at or at,
            "lease_expires_at": None,
            "reason": "resolved as sent by an operator",
        }
    else:
        values = {
            "status": S.PLANNED,
            "claimed_by": None,
            "lease_expires_at": None,
            "reason": None,
            "error_code": None,
        }
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, value in values.items():
        old = getattr(reminder, name)
        if old != value:
            before[name], after[name] = old, value
            setattr(reminder, name, value)
    return before, after


def settle_ambiguous(
    session: Session,
    reminder: Reminder | None,
    outcome: Outcome,
    provider: str,
    message_id: str | None,
    at: dt.datetime,
) -> list[str]:
    """``["settled"]`` when a provider event settled an ambiguous reminder as sent, else ``[]``.

    An event about a ``claimed`` or ``unknown`` reminder (SendGrid ``processed``/``delivered``
    with its reminder id, a Twilio status callback for its sid) proves the provider accepted
    the message, so it was sent: status ``sent``, ``sent_at`` its claim time (when the
    provider was called), the provider's message id kept, the lease cleared. The event's own
    status (delivered, opened...) is applied after this by ``advance``; ``at`` (the event's
    instant) is the sending time of a row without a claim time. An event saying the
    provider refused it (``failed_permanent``: SendGrid dropped, Twilio failed) only clears
    the lease; ``advance`` records the failure.
    """
    if reminder is None or reminder.status not in AMBIGUOUS or outcome.status is None:
        return []
    reminder.lease_expires_at = None
    reminder.provider = reminder.provider or provider
    if message_id and not reminder.provider_message_id:
        reminder.provider_message_id = message_id[:128]
    if outcome.status == S.FAILED_PERMANENT:
        return []
    reminder.status = S.SENT
    reminder.sent_at = reminder.sent_at or reminder.claimed_at or at
    reminder.reason = "settled by the provider's event (the send had timed out or crashed)"
    emit(session, [reminder_event("reminder.sent", reminder, settled=True)], at)
    return ["settled"]


def apply_outcome(
    session: Session,
    reminder: Reminder | None,
    customer_ids: list[str],
    outcome: Outcome,
    at: dt.datetime,
    error_code: str | None = None,
) -> list[str]:
    """The kinds of change ``outcome`` made (for the run summary)."""
    kinds: list[str] = []
    if reminder is not None and outcome.status:
        if advance(reminder, outcome.status, at, outcome.reason, error_code):
            kinds.append(outcome.status)
            if outcome.status in STATUS_EVENTS:
                emit(
                    session,
                    [
                        reminder_event(
                            STATUS_EVENTS[outcome.status], reminder, status=outcome.status
                        )
                    ],
                    at,
                )
    kinds += flag_customer(
        session,
        customer_ids,
        opt_out_channel=outcome.opt_out,
        invalid_email=outcome.invalid_address,
    )
    return kinds


def reminder_event(type_: str, reminder: Reminder, **data: Any) -> Event:
    """The outbound event ``type_`` about ``reminder`` (ids, stage and channel only)."""
    return Event(
        type_,
        reminder.invoice_id,
        reminder.customer_id,
        reminder.id,
        {"stage": reminder.stage, "channel": reminder.channel, **data},
    )


def flag_customer(
    target: Connection | Session,
    customer_ids: list[str],
    *,
    opt_out_channel: str | None = None,
    invalid_email: bool = False,
    reminder_id: int | None = None,
) -> list[str]:
    """The kinds of change (``opt_out_<channel>``, ``email_invalid``) a provider's word about
    the customers made: the one rule for "a permanent failure flags the customer", used by
    ``record`` (a send refused: Twilio 21610 opted out, an invalid e-mail address) and by
    tracking (a hard bounce, a spam report, an unsubscribe event).

    ``opt_out_channel`` (email | sms | voice) records the customers' opt-out of that channel
    (see :func:`opt_out`); ``invalid_email`` marks their e-mail address invalid (see
    :func:`mark_email_invalid`). Either also skips the channel's planned or claimed
    reminders. ``reminder_id`` is the reminder whose failure said so (named in the
    ``customer.opted_out`` event). Runs in ``target``'s transaction.
    """
    kinds: list[str] = []
    if opt_out_channel:
        kinds += opt_out(
            target, customer_ids, opt_out_channel, opted_out=True, reminder_id=reminder_id
        )
    if invalid_email:
        kinds += mark_email_invalid(target, customer_ids)
    return kinds


def opt_out(
    target: Connection | Session,
    customer_ids: list[str],
    channel: str,
    opted_out: bool,
    reminder_id: int | None = None,
) -> list[str]:
    """``["opt_out_<channel>"]`` (or opt_in) when any customer changed, else ``[]``.

    Opting out also skips the channel's planned or claimed reminders so a campaign already
    planned sends nothing more, and writes one ``customer.opted_out`` event per customer that
    changed (naming ``reminder_id`` when a reminder's failure said so).
    """
    if not customer_ids:
        return []
    column = {"sms": Customer.sms_opt_out, "voice": Customer.voice_opt_out}.get(
        channel, Customer.email_opt_out
    )
    moving = list(
        target.scalars(
            select(Customer.customer_id).where(
                Customer.customer_id.in_(customer_ids), column.is_not(opted_out)
            )
        )
    )
    changed = rowcount(
        target.execute(
            update(Customer)
            .where(Customer.customer_id.in_(customer_ids), column.is_not(opted_out))
            .values({column: opted_out})
        )
    )
    if opted_out and changed:
        emit(
            target,
            [
                Event("customer.opted_out", None, c, reminder_id, {"channel": channel})
                for c in moving
            ],
        )
    if opted_out:
        skip_open_reminders(
            target,
            customer_ids=customer_ids,
            channel=channel,
            reason=SkipReason(f"{channel}_opt_out"),
        )
    if not changed:
        return []
    return [f"{'opt_out' if opted_out else 'opt_in'}_{channel}"]


def mark_email_invalid(target: Connection | Session, customer_ids: list[str]) -> list[str]:
    """``["email_invalid"]`` when the customers' address was newly marked invalid; their
    planned or claimed e-mail reminders are skipped (``email_invalid``) either way."""
    if not customer_ids:
        return []
    changed = rowcount(
        target.execute(
            update(Customer)
            .where(Customer.customer_id.in_(customer_ids), Customer.email_invalid.is_(False))
            .values(email_invalid=True)
        )
    )
    skip_open_reminders(
        target, customer_ids=customer_ids, channel="email", reason=SkipReason.EMAIL_INVALID
    )
    return ["email_invalid"] if changed else []


def skip_open_reminders(
    target: Connection | Session,
    *,
    reason: SkipReason,
    customer_ids: list[str] | None = None,
    invoice_id: int | None = None,
    channel: str | None = None,
    invoice_ids: list[int] | None = None,
) -> int:
    """The number of planned or claimed reminders now skipped with ``reason``.

    Raises ValueError when ``reason`` is not a ``SkipReason`` value (every skip reason has
    its one home, ``dunning.core.skip``).
    """
    reason = SkipReason(reason)
    stmt = update(Reminder).where(Reminder.status.in_(sorted(PENDING)))
    if customer_ids is not None:
        stmt = stmt.where(Reminder.customer_id.in_(customer_ids))
    if invoice_id is not None:
        stmt = stmt.where(Reminder.invoice_id == invoice_id)
    if invoice_ids is not None:
        stmt = stmt.where(Reminder.invoice_id.in_(invoice_ids))
    if channel is not None:
        stmt = stmt.where(Reminder.channel == channel)
    stmt = stmt.values(status=S.SKIPPED, reason=reason.value, lease_expires_at=None)
    return rowcount(target.execute(stmt))


def customers_by_email(session: Session, email: str | None) -> list[str]:
    """The ids of customers with ``email`` (case-insensitive)."""
    if not email:
        return []
    rows = session.scalars(
        select(Customer.customer_id).where(func.lower(Customer.email) == email.strip().lower())
    )
    return list(rows)


def customers_by_phone(session: Session, phone: str | None) -> list[str]:
    """The ids of customers whose E.164 phone is ``phone``."""
    if not phone:
        return []
    return list(session.scalars(select(Customer.customer_id).where(Customer.phone == phone)))


def travelling_with(session: Session, reminder: Reminder | None) -> list[Reminder]:
    """The other rows of the one message ``reminder`` went out in (one message per customer:
    the same ``message_group``); a provider's event about the message is theirs too."""
    if reminder is None or reminder.message_group is None:
        return []
    return list(
        session.scalars(
            select(Reminder)
            .where(
                Reminder.message_group == reminder.message_group,
                Reminder.channel == reminder.channel,
                Reminder.id != reminder.id,
            )
            .order_by(Reminder.id)
        )
    )

"""What privacy needs from the ledger: a customer's reminders lose their personal content, and
message bodies past retention are dropped. Accounting facts (status, amounts, timestamps,
provider ids) stay."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, and_, or_, update
from sqlalchemy.orm import Session

from dunning.core.skip import SkipReason
from dunning.db.models import Reminder


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def erase_reminders(target: Connection | Session, customer_id: str) -> tuple[int, int]:
    """(reminders cleared, reminders cancelled) for an erased customer, in ``target``'s
    transaction.

    Every reminder of ``customer_id`` loses its address, subject and body; a ``planned`` one
    becomes ``skipped`` (reason ``customer erased``): no new message may go to a person who
    asked to be forgotten. Idempotent (erasing twice cancels nothing more).
    """
    cleared = target.execute(
        update(Reminder)
        .where(Reminder.customer_id == customer_id)
        .values(to_address=None, subject=None, body=None)
    )
    cancelled = target.execute(
        update(Reminder)
        .where(Reminder.customer_id == customer_id, Reminder.status == "planned")
        .values(status="skipped", reason=SkipReason.CUSTOMER_ERASED.value)
    )
    return _count(cleared), _count(cancelled)


def drop_old_bodies(target: Connection | Session, cutoff: dt.datetime) -> int:
    """The number of reminders whose subject and body were dropped for being sent (else
    created) before ``cutoff`` (UTC), in ``target``'s transaction."""
    # Spelled out instead of COALESCE so the UTC bind processing applies to each column.
    older = or_(
        and_(Reminder.sent_at.is_not(None), Reminder.sent_at < cutoff),
        and_(Reminder.sent_at.is_(None), Reminder.created_at < cutoff),
    )
    return _count(
        target.execute(
            update(Reminder)
            .where(older, or_(Reminder.body.is_not(None), Reminder.subject.is_not(None)))
            .values(body=None, subject=None)
        )
    )

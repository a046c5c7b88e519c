"""Settling claims whose holder vanished (a crash or kill between claim and record).

Such a reminder may or may not have left. It is never re-sent blindly: the provider is asked
where it can be (Twilio lists messages to a number), and otherwise the row becomes
``unknown`` for the operator.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Engine, select, update

from dunning.core.messages import StaleClaim
from dunning.core.status import ReminderStatus as S
from dunning.db.models import Customer, Reminder, utcnow

#: Asks the provider whether a stale claim went out: provider message id, None (it did not),
#: or raises NotImplementedError when the provider cannot be asked.
Finder = Callable[[StaleClaim], str | None]


def stale_claims(engine: Engine, now: dt.datetime | None = None) -> list[StaleClaim]:
    """The claims whose lease has expired."""
    now = now or utcnow()
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Reminder.id,
                Reminder.channel,
                Reminder.to_address,
                Reminder.claimed_at,
                Reminder.message_group,
                Customer.email,
                Customer.phone,
            )
            .join(Customer, Customer.customer_id == Reminder.customer_id)
            .where(Reminder.status == S.CLAIMED, Reminder.lease_expires_at < now)
        ).all()
    return [
        StaleClaim(
            r.id,
            r.channel,
            r.to_address or (r.email if r.channel == "email" else r.phone),
            r.claimed_at,
            r.message_group,
        )
        for r in rows
    ]


def reconcile_stale(
    engine: Engine, finders: dict[str, Finder], now: dt.datetime | None = None
) -> dict[str, int]:
    """Settle expired claims; returns counts of rows found sent, released and marked unknown.

    A claim is never re-sent blindly: when the provider confirms it has the message the row
    becomes ``sent`` with that id; when the provider confirms it has none the row goes back to
    ``planned``; when the provider cannot be asked the row becomes ``unknown`` and is reported.
    The rows of one message (``message_group``) are settled together, by what the provider
    says about the message.
    """
    now = now or utcnow()
    counts = {"found_sent": 0, "released": 0, "unknown": 0}
    claims = stale_claims(engine, now)
    by_id = {c.reminder_id: c for c in claims}
    settled_groups: set[int] = set()
    for claim_ in claims:
        group = claim_.message_group
        if group is not None:
            # One message for several rows: the provider is asked about the message once
            # (as its lead, whose id it carries) and every row of it is settled alike.
            if group in settled_groups:
                continue
            settled_groups.add(group)
            claim_ = by_id.get(group, claim_)
        finder = finders.get(claim_.channel)
        try:
            if finder is None:
                raise NotImplementedError
            found = finder(claim_)
        except NotImplementedError:
            values: dict[str, object] = {
                "status": S.UNKNOWN,
                "reason": "process stopped after claiming; the provider cannot be asked "
                "whether it sent the message — check the provider's log",
            }
            key = "unknown"
        else:
            if found:
                values = {
                    "status": S.SENT,
                    "provider_message_id": found,
                    "sent_at": now,
                    "reason": "reconciled with the provider after a crash",
                }
                key = "found_sent"
            else:
                values = {"status": S.PLANNED, "claimed_by": None, "message_group": None}
                key = "released"
        rows = (
            Reminder.message_group == group
            if group is not None
            else Reminder.id == claim_.reminder_id
        )
        with engine.begin() as conn:
            res = conn.execute(
                update(Reminder)
                .where(rows, Reminder.status == S.CLAIMED, Reminder.lease_expires_at < now)
                .values(lease_expires_at=None, updated_at=now, **values)
            )
            counts[key] += res.rowcount
    return counts

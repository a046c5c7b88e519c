"""ReminderStatus: the states of a reminders-ledger row, and every set derived from them.

The one declaration of the ledger's states. The database column, the planner, delivery,
tracking, reports and the CLI read their sets from here; none writes the strings out again.

Life of a row: ``planned`` (written by the plan) -> ``claimed`` (a delivery worker holds it)
-> ``sent`` (the provider accepted it) -> tracking states the provider reports (``delivered``,
``opened``, ``clicked``, ``replied``; ``bounced``, ``undelivered``). A row may also end
``failed_permanent`` (the provider refused it), ``skipped`` (it must not go out, with a reason)
or ``unknown`` (its claim expired and the provider could not tell whether it went out).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ReminderStatus(StrEnum):
    """The status of a reminders-ledger row (the ``reminders.status`` column's values).

    Declaration order is the order the database model lists them in.
    """

    PLANNED = "planned"
    CLAIMED = "claimed"
    SENT = "sent"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    REPLIED = "replied"
    BOUNCED = "bounced"
    UNDELIVERED = "undelivered"
    FAILED_PERMANENT = "failed_permanent"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"


S = ReminderStatus

#: Every status, in declaration order (the values of the ``reminders.status`` column).
ALL: tuple[ReminderStatus, ...] = tuple(ReminderStatus)

#: "Only moves forward": an event may raise a reminder's status, never lower it. Failures
#: outrank every success so a late "delivered" never hides a bounce, while a bounce after
#: "delivered" still wins (SendGrid can report both). ``skipped`` never left, so no provider
#: event may revive it. ``unknown`` (crash after the provider call) ranks with ``claimed`` so
#: any provider news reconciles it.
RANK: dict[str, int] = {
    S.PLANNED: 0,
    S.CLAIMED: 1,
    S.UNKNOWN: 1,
    S.SENT: 2,
    S.DELIVERED: 3,
    S.OPENED: 4,
    S.CLICKED: 5,
    S.REPLIED: 6,
    S.UNDELIVERED: 10,
    S.FAILED_PERMANENT: 10,
    S.BOUNCED: 10,
    S.SKIPPED: 99,
}

#: The reminder timestamp column each status sets (the first time only).
TIMESTAMP_COLUMN: dict[str, str] = {
    S.SENT: "sent_at",
    S.DELIVERED: "delivered_at",
    S.OPENED: "opened_at",
    S.CLICKED: "clicked_at",
    S.REPLIED: "replied_at",
    S.BOUNCED: "bounced_at",
    S.UNDELIVERED: "failed_at",
    S.FAILED_PERMANENT: "failed_at",
}

#: Statuses that leave an (invoice, stage, channel) open: the planner plans it again.
OPEN: frozenset[ReminderStatus] = frozenset({S.PLANNED})
#: Statuses of a row no worker has finished: planned, or claimed by one. A payment, an
#: opt-out or an erasure skips these before they go out.
PENDING: frozenset[ReminderStatus] = frozenset({S.PLANNED, S.CLAIMED})
#: Statuses of a reminder the provider accepted ("sent or later"): only these count as an
#: earlier reminder the customer got, so only they move the ladder on.
SENT_OR_LATER: frozenset[ReminderStatus] = frozenset(
    {S.SENT, S.DELIVERED, S.OPENED, S.CLICKED, S.REPLIED, S.BOUNCED, S.UNDELIVERED}
)
#: Statuses nobody knows the fate of: a claim whose provider call timed out (or whose holder
#: vanished) and a row reconciliation marked ``unknown``.
AMBIGUOUS: frozenset[ReminderStatus] = frozenset({S.CLAIMED, S.UNKNOWN})
#: Statuses of a reminder that went (or may have gone) out to the customer.
WENT_OUT: frozenset[ReminderStatus] = SENT_OR_LATER | AMBIGUOUS
#: Statuses of a reminder that never reached the provider. Such a row never consumes its
#: stage: the planner plans it again (a failure from the customer's next local day on).
NOT_SENT: frozenset[ReminderStatus] = frozenset({S.FAILED_PERMANENT, S.SKIPPED})
#: Statuses the provider confirmed reached the customer (delivered or a later engagement).
REACHED: frozenset[ReminderStatus] = frozenset({S.DELIVERED, S.OPENED, S.CLICKED, S.REPLIED})
#: Statuses of a message the provider accepted but could not deliver.
BOUNCED: frozenset[ReminderStatus] = frozenset({S.BOUNCED, S.UNDELIVERED})
#: Statuses whose message may still change at the provider: it went out (or may have) and
#: no delivery report came yet (rank of claimed/unknown or sent). SMS polling asks for these.
NOT_FINAL: frozenset[ReminderStatus] = frozenset(s for s in WENT_OUT if RANK[s] <= RANK[S.SENT])
#: Statuses whose row carries a reason worth showing as its error.
WITH_REASON: frozenset[ReminderStatus] = NOT_SENT | {S.UNKNOWN}

#: The run report's outcome word for a send line in each status.
RUN_OUTCOME: dict[str, str] = {
    **{s: "sent" for s in SENT_OR_LATER},
    S.FAILED_PERMANENT: "failed",
    S.SKIPPED: "skipped",
    S.PLANNED: "pending",
    **{s: "unknown" for s in AMBIGUOUS},
}


def moves_forward(current: str, new: str) -> bool:
    """Whether a reminder in ``current`` status may move to ``new`` (by RANK; an unknown
    ``new`` never moves, an unknown ``current`` ranks as planned)."""
    return RANK.get(new, -1) > RANK.get(current, 0)


@dataclass(frozen=True)
class Outcome:
    """What one provider event means for the ledger (the provider mappings in
    dunning.tracking.status produce it, dunning.ledger.events applies it)."""

    status: str | None  # the reminder status it implies, None for "record only"
    opt_out: str | None = None  # "email" | "sms": the customer opted out of the channel
    invalid_address: bool = False  # hard bounce: never email this address again
    reason: str | None = None

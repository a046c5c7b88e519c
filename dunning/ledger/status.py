"""The ledger's status order: a status only moves forward, and the timestamp each one sets."""

from __future__ import annotations

# "Only moves forward": an event may raise a reminder's status, never lower it.
# Failures outrank every success so a late "delivered" never hides a bounce, while a bounce
# after "delivered" still wins (SendGrid can report both). ``skipped`` never left, so no
# provider event may revive it. ``unknown`` (crash after the provider call) ranks with
# ``claimed`` so any provider news reconciles it.
STATUS_RANK: dict[str, int] = {
    "planned": 0,
    "claimed": 1,
    "unknown": 1,
    "sent": 2,
    "delivered": 3,
    "opened": 4,
    "clicked": 5,
    "replied": 6,
    "undelivered": 10,
    "failed_permanent": 10,
    "bounced": 10,
    "skipped": 99,
}

#: The reminder timestamp column each status sets (the first time only).
STATUS_TIMESTAMP: dict[str, str] = {
    "sent": "sent_at",
    "delivered": "delivered_at",
    "opened": "opened_at",
    "clicked": "clicked_at",
    "replied": "replied_at",
    "bounced": "bounced_at",
    "undelivered": "failed_at",
    "failed_permanent": "failed_at",
}


def moves_forward(current: str, new: str) -> bool:
    """Whether a reminder in ``current`` status may move to ``new``."""
    return STATUS_RANK.get(new, -1) > STATUS_RANK.get(current, 0)

"""Helpers shared by the ledger modules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

#: Statuses in which a reminder has left (or may have left) for the provider.
OUTBOUND = ("sent", "delivered", "opened", "clicked", "replied", "bounced", "undelivered")
_CHUNK = 500


def _chunks(seq: Sequence[int], size: int = _CHUNK) -> Iterable[Sequence[int]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]

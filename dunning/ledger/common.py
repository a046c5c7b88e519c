"""Helpers shared by the ledger modules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

_CHUNK = 500


def _chunks(seq: Sequence[int], size: int = _CHUNK) -> Iterable[Sequence[int]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]

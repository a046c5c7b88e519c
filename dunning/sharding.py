"""Splitting a reminder run into shards by customer: a stable key per customer, modulo N.

A customer's invoices, history and ledger rows always land in the same shard, so a shard plans
exactly what the whole run would plan for those customers.
"""

from __future__ import annotations

import zlib

#: Most shards a run may be split into (a parameter bound, not a technical limit).
MAX_SHARDS = 256


def shard_key(customer_id: str) -> int:
    """The customer's shard key: CRC-32 of the id's UTF-8 bytes, an int in 0 .. 2**32 - 1.

    Why CRC-32 and not ``hash()``: Python salts ``hash`` of a str per process, while this key is
    stored in ``customers.shard_key`` and must be the same on every machine and every version.
    """
    return zlib.crc32(customer_id.encode("utf-8"))


def shard_of(customer_id: str, shards: int) -> int:
    """The shard (0 .. shards - 1) handling ``customer_id`` in a run split ``shards`` ways."""
    return shard_key(customer_id) % shards


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` cut into ``parts`` whole shares that differ by at most one and sum to it."""
    base, rest = divmod(total, parts)
    return [base + (1 if k < rest else 0) for k in range(parts)]

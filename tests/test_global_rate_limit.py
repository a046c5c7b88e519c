"""Provider rate limits shared through the Prefect server (global concurrency limits)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from prefect.client.orchestration import get_client

from dunning.channels.ratelimit import (
    PrefectRateLimit,
    TokenBucket,
    global_limit_name,
    limiter_for,
)
from dunning.prefect_setup import ensure_rate_limits

pytestmark = pytest.mark.prefect


async def _ensure(rates: dict[str, float]) -> list[dict]:
    async with get_client() as client:
        return await ensure_rate_limits(client, rates)


async def _read(name: str):
    async with get_client() as client:
        return await client.read_global_concurrency_limit_by_name(name)


def test_setup_creates_one_decaying_block_per_configured_channel_once(prefect_server):
    first = asyncio.run(_ensure({"sms": 7.0, "email": 0.0}))
    again = asyncio.run(_ensure({"sms": 7.0, "email": 0.0}))
    changed = asyncio.run(_ensure({"sms": 9.0}))
    assert [r["status"] for r in first] == ["created"]
    assert [r["status"] for r in again] == ["unchanged"]
    assert [r["status"] for r in changed] == ["updated"]
    limit = asyncio.run(_read(global_limit_name("sms")))
    # Capacity: one block of slots, a second of sends at the paced rate (8.55/s -> 8).
    assert (limit.limit, limit.active) == (8, True)
    assert limit.slot_decay_per_second == pytest.approx(9.0 * 0.95)  # 5% headroom for jitter


def test_channels_pace_through_the_server_limit_when_it_exists(prefect_server):
    asyncio.run(_ensure({"sms": 50.0}))
    limiter = limiter_for("sms", 50.0)
    assert isinstance(limiter, PrefectRateLimit)
    assert (limiter.block, limiter.rate) == (47, pytest.approx(47.5))
    waits = [limiter.acquire() for _ in range(3)]
    assert all(w >= 0 for w in waits)
    assert limiter.calls == 1  # one block of 47 slots covers the three messages


def _most_in_one_second(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    return max(sum(1 for t in stamps[i:] if t < start + 1.0) for i, start in enumerate(stamps))


def test_two_processes_share_the_limit_with_a_call_per_block_not_per_message(prefect_server):
    """Two limiters (as two workers of one server would hold) send 30 messages each under a
    20/s limit: no second holds more than 20 sends, and the Prefect server is asked once per
    block of slots (19 at the paced 19/s), not once per message."""
    asyncio.run(_ensure({"sms": 20.0}))
    limiters = [limiter_for("sms", 20.0), limiter_for("sms", 20.0)]
    assert all(isinstance(lim, PrefectRateLimit) and lim.block == 19 for lim in limiters)
    stamps: list[float] = []
    lock = threading.Lock()

    def send(limiter: PrefectRateLimit) -> None:
        for _ in range(30):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=send, args=(lim,)) for lim in limiters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stamps) == 60
    assert _most_in_one_second(stamps) <= 20
    calls = sum(lim.calls for lim in limiters)
    assert 4 <= calls <= 8  # 60 messages in blocks of 19: 4 at least, far from 60


def test_a_request_of_many_messages_takes_its_slots_in_one_call(prefect_server):
    """A request of 40 messages (as a SendGrid request of 40 personalizations) under a 50/s
    limit (blocks of 47): one Prefect call, and the local bucket still counts 40 messages
    (the next request waits). (The voice limit: this server has no e-mail limit.)"""
    asyncio.run(_ensure({"voice": 50.0}))
    limiter = limiter_for("voice", 50.0)
    assert isinstance(limiter, PrefectRateLimit)
    start = time.monotonic()
    # The request goes when its 40th message's turn comes (the first goes at once).
    limiter.acquire(40)
    assert limiter.calls == 1
    # The rest of the block: no call, paced after the 40 as 7 more messages.
    limiter.acquire(7)
    assert limiter.calls == 1
    assert time.monotonic() - start >= 46 / 47.5 - 0.01


def test_without_a_server_limit_the_process_bucket_paces(prefect_server):
    limiter = limiter_for("email", 20.0)  # no dunning-email-rate limit on this server
    assert isinstance(limiter, TokenBucket) and limiter.rate == pytest.approx(19.0)
    assert isinstance(limiter_for("sms", 0.0), TokenBucket)  # 0 = unlimited, nothing to ask

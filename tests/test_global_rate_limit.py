"""Provider rate limits shared through the Prefect server (global concurrency limits)."""

from __future__ import annotations

import asyncio

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


def test_setup_creates_one_decaying_slot_per_configured_channel_once(prefect_server):
    first = asyncio.run(_ensure({"sms": 7.0, "email": 0.0}))
    again = asyncio.run(_ensure({"sms": 7.0, "email": 0.0}))
    changed = asyncio.run(_ensure({"sms": 9.0}))
    assert [r["status"] for r in first] == ["created"]
    assert [r["status"] for r in again] == ["unchanged"]
    assert [r["status"] for r in changed] == ["updated"]
    limit = asyncio.run(_read(global_limit_name("sms")))
    assert (limit.limit, limit.active) == (1, True)
    assert limit.slot_decay_per_second == pytest.approx(9.0 * 0.95)  # 5% headroom for jitter


def test_channels_pace_through_the_server_limit_when_it_exists(prefect_server):
    asyncio.run(_ensure({"sms": 50.0}))
    limiter = limiter_for("sms", 50.0)
    assert isinstance(limiter, PrefectRateLimit)
    waits = [limiter.acquire() for _ in range(3)]
    assert all(w >= 0 for w in waits)


def test_without_a_server_limit_the_process_bucket_paces(prefect_server):
    limiter = limiter_for("email", 20.0)  # no dunning-email-rate limit on this server
    assert isinstance(limiter, TokenBucket) and limiter.rate == pytest.approx(19.0)
    assert isinstance(limiter_for("sms", 0.0), TokenBucket)  # 0 = unlimited, nothing to ask

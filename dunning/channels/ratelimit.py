"""Sending a batch: a rate limit (at most ``rate`` messages per second per channel) and bounded
concurrency, shared by every channel's ``send_batch``.

The limit is a Prefect global concurrency limit when a Prefect server is configured and
``dunning setup-prefect`` created it — then every process and worker sharing that server shares
one provider limit — and a thread-safe token bucket in this process otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from dunning.core.messages import OutboundMessage, SendResult
from dunning.errors import ProviderAuthError
from dunning.masking import scrub


class TokenBucket:
    """Hands out tokens at ``rate`` per second with bursts up to ``capacity``; rate 0 means
    unlimited.

    The default capacity is one token: sends are spaced 1/rate apart, so no one-second window
    ever holds more than ``rate`` sends (a provider's limit is a ceiling, not an average).
    """

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate < 0:
            raise ValueError("rate must be >= 0 (0 = unlimited)")
        self.rate = rate
        self.capacity = capacity if capacity is not None else 1.0
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def _reserve(self) -> float:
        """Take one token (possibly on credit); return how long the caller must wait."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1
            # A negative balance is a queue: each waiter sleeps until its own token accrues.
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> float:
        """Block until a token is available; return the seconds waited."""
        if self.rate == 0:
            return 0.0
        wait = self._reserve()
        if wait > 0:
            self._sleep(wait)
        return wait


class Limiter(Protocol):
    """Something that blocks until one more message may go out."""

    def acquire(self) -> float:
        """Block until one message may be sent; return the seconds waited."""
        ...


#: Share of a provider's limit we pace at. Sends leave exactly 1/rate apart, but network
#: jitter bunches their arrival; 5% headroom keeps every second at the provider under the
#: limit while the sustained rate stays within 10% of it.
HEADROOM = 0.95


def paced_rate(limit: float) -> float:
    """The send rate used for a provider limit of ``limit`` messages per second."""
    return limit * HEADROOM


def global_limit_name(kind: str) -> str:
    """The Prefect global concurrency limit that paces ``kind`` ("email" | "sms") sends."""
    return f"dunning-{kind}-rate"


class PrefectRateLimit:
    """Paces sends with a Prefect global concurrency limit whose slots decay at the rate, so
    all workers and processes of one Prefect server share one provider limit."""

    def __init__(self, name: str) -> None:
        self.name = name

    def acquire(self) -> float:
        from prefect.concurrency.sync import rate_limit

        start = time.monotonic()
        rate_limit(self.name, occupy=1, strict=True)
        return time.monotonic() - start


def _global_limit_exists(name: str) -> bool:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        return False  # no server (an ephemeral one is per process): the local bucket serves
    try:
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        return False
    except Exception as exc:  # noqa: BLE001 - an unreachable server must not stop sending
        logging.getLogger(__name__).warning(
            "cannot read Prefect rate limit %s (%s); pacing in this process only",
            name,
            type(exc).__name__,
        )
        return False
    return bool(limit.active and limit.slot_decay_per_second)


def limiter_for(kind: str, rate: float) -> Limiter:
    """The limiter for ``kind`` sends at ``rate`` per second (0 = unlimited): the Prefect
    global limit when one exists on the configured server, else a local token bucket."""
    if rate > 0 and _global_limit_exists(global_limit_name(kind)):
        return PrefectRateLimit(global_limit_name(kind))
    return TokenBucket(paced_rate(rate))


def send_concurrently(
    messages: Sequence[OutboundMessage],
    send_one: Callable[[OutboundMessage], SendResult],
    provider: str,
    bucket: Limiter,
    concurrency: int = 1,
) -> list[SendResult]:
    """One SendResult per message, in order: each sent by ``send_one`` under the rate limit
    with at most ``concurrency`` in flight. ProviderAuthError propagates (the run stops);
    any other unexpected error becomes a failed result for that message only."""

    def guarded(message: OutboundMessage) -> SendResult:
        bucket.acquire()
        try:
            return send_one(message)
        except ProviderAuthError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad message must not sink the batch
            return SendResult(
                reminder_id=message.reminder_id,
                ok=False,
                provider=provider,
                error_code="unexpected_error",
                error=f"{type(exc).__name__}: {scrub(str(exc))[:300]}",
            )

    if concurrency <= 1 or len(messages) <= 1:
        return [guarded(m) for m in messages]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(messages))) as pool:
        return list(pool.map(guarded, messages))

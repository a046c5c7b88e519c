"""Sending a batch: a rate limit (at most ``rate`` messages per second per channel) and bounded
concurrency, shared by every channel's ``send_batch``.

The limit is a Prefect global concurrency limit when a Prefect server is configured and
``dunning setup-prefect`` created it — then every process and worker sharing that server shares
one provider limit — and a thread-safe token bucket in this process otherwise.

Why blocks of slots: a Prefect call per message made a run cost the Prefect API one request
per message (a 1,000-recipient SendGrid request took 1,000 slots, and Prefect Cloud rate-limits
its API). The global limit's capacity is one block (one second of sends, see
:func:`block_size`); a process takes a whole block with one call (``occupy`` = the block) and
spends it message by message through its own token bucket at the same rate. The server hands
the next block out only once the previous one has decayed, i.e. once its holder has had the
time to send it at the rate, so blocks of different processes follow each other and sends stay
spaced 1/rate apart; a block not spent in its time expires (it is not carried over).
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

    def _reserve(self, n: int) -> float:
        """Take ``n`` tokens (possibly on credit); return how long the caller must wait."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            # A negative balance is a queue: each waiter sleeps until its own tokens accrue.
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self, n: int = 1) -> float:
        """Block until ``n`` tokens are available (one request carrying ``n`` messages goes
        out when the last of them has accrued); return the seconds waited."""
        if n < 1:
            raise ValueError("n must be >= 1 (messages in the request)")
        if self.rate == 0:
            return 0.0
        wait = self._reserve(n)
        if wait > 0:
            self._sleep(wait)
        return wait


class Limiter(Protocol):
    """Something that blocks until one more provider request may go out."""

    def acquire(self, n: int = 1) -> float:
        """Block until a request of ``n`` messages may be sent (the provider's limit counts
        messages: a SendGrid request counts each personalization); return the seconds
        waited."""
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


def block_size(rate: float) -> int:
    """Slots of the Prefect global limit taken per call for a paced ``rate`` (messages per
    second): one second of sends, at least one. It is also the limit's capacity."""
    return max(1, int(rate))


class PrefectRateLimit:
    """Paces sends with a Prefect global concurrency limit whose slots decay at the rate, so
    all workers and processes of one Prefect server share one provider limit.

    ``block`` slots (the limit's capacity) are taken with one call and spent message by
    message at ``rate`` (the limit's decay) by a token bucket in this process; a block
    expires after ``block / rate`` seconds, the time the server takes to hand it out again.
    Prefect API calls: one per block (plus the server's 423 answers while another process
    holds the limit), not one per message.
    """

    def __init__(
        self,
        name: str,
        rate: float,
        block: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        take: Callable[[str, int], None] | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 (the limit's slot decay per second)")
        if block < 1:
            raise ValueError("block must be >= 1 (the limit's capacity)")
        self.name = name
        self.rate = rate
        self.block = block
        self.calls = 0  # Prefect calls made (one per block)
        self._bucket = TokenBucket(rate, clock=clock, sleep=sleep)
        self._clock = clock
        self._take = take or _take_slots
        self._left = 0
        self._expires = 0.0
        self._lock = threading.Lock()

    def acquire(self, n: int = 1) -> float:
        """Block until a request of ``n`` messages may go out; return the seconds waited.

        The local bucket spaces the messages 1/rate apart; slots come from the block this
        process holds, a new block (one Prefect call) when it is spent or expired."""
        start = self._clock()
        self._bucket.acquire(n)
        with self._lock:
            need = n
            while need:
                if self._left == 0 or self._clock() >= self._expires:
                    self._take(self.name, self.block)
                    self.calls += 1
                    self._left = self.block
                    self._expires = self._clock() + self.block / self.rate
                used = min(need, self._left)
                self._left -= used
                need -= used
        return self._clock() - start


def _take_slots(name: str, occupy: int) -> None:
    """``occupy`` slots of the Prefect rate limit ``name`` with one call (Prefect retries
    its 423 answers after the Retry-After the server computes from the decay)."""
    from prefect.concurrency.sync import rate_limit

    rate_limit(name, occupy=occupy, strict=True)


def _global_limit(name: str) -> tuple[float, int] | None:
    """The decay (slots per second) and capacity of the active Prefect rate limit ``name``
    on the configured server, or None (no server, no such limit, unreachable)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        return None  # no server (an ephemeral one is per process): the local bucket serves
    try:
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        return None
    except Exception as exc:  # noqa: BLE001 - an unreachable server must not stop sending
        logging.getLogger(__name__).warning(
            "cannot read Prefect rate limit %s (%s); pacing in this process only",
            name,
            type(exc).__name__,
        )
        return None
    if not (limit.active and limit.slot_decay_per_second):
        return None
    return float(limit.slot_decay_per_second), int(limit.limit)


def limiter_for(kind: str, rate: float) -> Limiter:
    """The limiter for ``kind`` sends at ``rate`` per second (0 = unlimited): the Prefect
    global limit when one exists on the configured server, else a local token bucket."""
    found = _global_limit(global_limit_name(kind)) if rate > 0 else None
    if found is not None:
        decay, capacity = found
        return PrefectRateLimit(global_limit_name(kind), decay, block=max(1, capacity))
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

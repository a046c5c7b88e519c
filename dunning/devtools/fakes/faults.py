"""Which send attempt fails how: throttling, rate limits, server errors and hangs."""

from __future__ import annotations

import enum
import threading
import time
from collections import deque

from dunning.devtools.fakes.config import FakeConfig
from dunning.devtools.fakes.state import FakeState


class Fault(enum.Enum):
    """A way a send attempt is refused instead of accepted."""

    THROTTLED = "throttled"  # burst_429: every Nth request
    RATE_LIMITED = "rate_limited"  # more than rate_limit accepted sends in the last second
    ERROR_500 = "error_500"
    ERROR_503 = "error_503"
    TIMEOUT = "timeout"  # hang longer than the client waits

    @property
    def is_429(self) -> bool:
        """Whether the fault is answered 429 Too Many Requests."""
        return self in (Fault.THROTTLED, Fault.RATE_LIMITED)


class Faults:
    """Draws the fault (or none) of each send attempt, per provider, from the seeded state."""

    def __init__(self, config: FakeConfig, state: FakeState) -> None:
        self._config = config
        self._state = state
        self._lock = threading.Lock()
        self._requests: dict[str, int] = {}
        self._window: dict[str, deque[float]] = {}

    def draw(self, provider: str) -> Fault | None:
        """The fault of the next send attempt to ``provider``; None means accept it."""
        config = self._config
        with self._lock:
            n = self._requests.get(provider, 0) + 1
            self._requests[provider] = n
            if config.burst_429 and n % config.burst_429 == 0:
                return Fault.THROTTLED
            if config.rate_limit:
                window = self._window.setdefault(provider, deque())
                now = time.monotonic()
                while window and now - window[0] >= 1.0:
                    window.popleft()
                if len(window) >= config.rate_limit:
                    return Fault.RATE_LIMITED
                window.append(now)
        # Draw both numbers every time so one knob does not shift the other's sequence.
        error_draw, timeout_draw = self._state.random(), self._state.random()
        if error_draw < config.error_rate:
            return Fault.ERROR_503 if error_draw < config.error_rate / 2 else Fault.ERROR_500
        if timeout_draw < config.timeout_rate:
            return Fault.TIMEOUT
        return None

    def reset(self) -> None:
        """Restart the request counters and the rate-limit window."""
        with self._lock:
            self._requests.clear()
            self._window.clear()

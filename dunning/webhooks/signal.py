"""The receiver's signal to Prefect that the inbox has new events: one aggregated
``dunning.webhook.received`` event per debounce window, never one per request.

The track-responses deployment has a trigger on this event (prefect.yaml), so webhook events
are applied within seconds instead of at the next 15-minute schedule. The payload holds only
counts per provider: no event ids, addresses, phone numbers or bodies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

log = logging.getLogger("dunning.webhooks")

WEBHOOK_EVENT = "dunning.webhook.received"
INBOX_RESOURCE = "dunning.webhooks.inbox"

Emitter = Callable[[dict[str, Any]], None]


def prefect_emitter(payload: dict[str, Any]) -> None:
    """Emit ``payload`` as the inbox event through Prefect's events client."""
    from prefect.events import emit_event

    emit_event(
        event=WEBHOOK_EVENT,
        resource={
            "prefect.resource.id": INBOX_RESOURCE,
            "prefect.resource.name": "dunning webhook inbox",
        },
        payload=payload,
    )


def prefect_configured() -> bool:
    """Whether a Prefect API (a server or Cloud) is configured to receive events.

    Without PREFECT_API_URL, Prefect's client would start an ephemeral server inside the
    receiver just to drop the event: the receiver then stays silent instead.
    """
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


class InboxSignal:
    """Counts newly stored webhook records and emits them at most once per ``debounce_s``.

    The first record after a quiet window is signalled at once (leading edge); records that
    arrive within the window are summed and signalled when it closes (trailing edge), so the
    last burst is never left waiting for the schedule. Call :meth:`stored` from the event
    loop.
    """

    def __init__(
        self, debounce_s: float, emit: Emitter, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.debounce_s = debounce_s
        self._emit = emit
        self._clock = clock
        self._counts: Counter[str] = Counter()
        self._last: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    def stored(self, provider: str, count: int) -> None:
        """Nothing; notes ``count`` new inbox records from ``provider`` and signals when due."""
        if count <= 0:
            return
        self._counts[provider] += count
        now = self._clock()
        if self._last is None or now - self._last >= self.debounce_s:
            self.flush()
        elif self._timer is None:
            delay = self._last + self.debounce_s - now
            self._timer = asyncio.get_running_loop().call_later(delay, self.flush)

    def flush(self) -> None:
        """Nothing; emits the counts gathered so far (if any) and starts a new window."""
        self._timer = None
        if not self._counts:
            return
        payload = {
            "stored": sum(self._counts.values()),
            "by_provider": dict(sorted(self._counts.items())),
        }
        self._counts.clear()
        self._last = self._clock()
        try:
            self._emit(payload)
        except Exception as exc:  # noqa: BLE001  (a lost signal must not fail a webhook)
            # The events stay in the inbox; the scheduled track-responses run applies them.
            log.warning(
                "could not emit %s (%s); the scheduled run applies the inbox",
                WEBHOOK_EVENT,
                type(exc).__name__,
            )

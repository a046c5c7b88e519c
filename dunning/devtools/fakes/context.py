"""The runtime one fake server shares between providers: config, state, faults, callback posting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from dunning.devtools.fakes.config import FakeConfig
from dunning.devtools.fakes.faults import Fault, Faults
from dunning.devtools.fakes.state import CallbackLog, FakeState
from dunning.masking import scrub

log = logging.getLogger("dunning.devtools.fakes")


def _record(
    state: FakeState, kind: str, url: str, response: httpx.Response | None, exc: Exception | None
) -> int | None:
    """The receiver's status code (None if unreachable), after logging the attempt in ``state``."""
    if response is not None:
        state.log_callback(CallbackLog(kind, url, response.status_code))
        if response.status_code >= 300:
            log.warning("%s callback to %s answered %s", kind, url, response.status_code)
        return response.status_code
    # Why: exception texts can carry the payload's addresses, so they are scrubbed.
    error = scrub(f"{type(exc).__name__}: {exc}")
    state.log_callback(CallbackLog(kind, url, None, error))
    log.warning("%s callback to %s failed: %s", kind, url, error)
    return None


@dataclass
class FakeContext:
    """One fake server's config, state and fault draws, plus the client that posts callbacks."""

    config: FakeConfig
    state: FakeState
    faults: Faults
    _client: httpx.AsyncClient | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @classmethod
    def create(cls, config: FakeConfig) -> FakeContext:
        """A context with credentials filled in and fresh state."""
        config = config.with_credentials()
        config.validate()
        state = FakeState(config.seed)
        return cls(config=config, state=state, faults=Faults(config, state))

    async def start(self) -> None:
        """Open the async HTTP client used for callbacks (call inside the server's loop)."""
        self._client = httpx.AsyncClient(timeout=10.0)

    async def stop(self) -> None:
        """Cancel pending callbacks and close the client."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def pause(self) -> None:
        """Wait the configured latency without blocking the event loop."""
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)

    async def hang(self) -> None:
        """Wait longer than any sane client timeout (the timeout_rate fault)."""
        await asyncio.sleep(self.config.hang_s)

    async def draw_fault(self, provider: str) -> Fault | None:
        """The fault of this send attempt to ``provider``, None to accept it.

        An unaccepted timeout hangs here and then reads as a 503 (the client has long given up);
        ``Fault.TIMEOUT`` comes back only when ``timeout_accepts``: accept, then :meth:`hang`.
        """
        fault = self.faults.draw(provider)
        if fault is Fault.TIMEOUT and not self.config.timeout_accepts:
            await self.hang()
            return Fault.ERROR_503
        return fault

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background, after the current response (callbacks)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def post(
        self,
        kind: str,
        url: str,
        *,
        headers: Mapping[str, str],
        form: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> int | None:
        """The receiver's status code for one callback POST (None if it could not be reached)."""
        assert self._client is not None, "FakeContext.start() was not awaited"
        try:
            response = await self._client.post(
                url, data=form, content=content, headers=dict(headers)
            )
        except httpx.HTTPError as exc:
            return _record(self.state, kind, url, None, exc)
        return _record(self.state, kind, url, response, None)

    async def post_for_text(
        self, kind: str, url: str, *, headers: Mapping[str, str], form: Mapping[str, str]
    ) -> tuple[int | None, str]:
        """The receiver's status code and body for one POST (a call fetching its TwiML)."""
        assert self._client is not None, "FakeContext.start() was not awaited"
        try:
            response = await self._client.post(url, data=form, headers=dict(headers))
        except httpx.HTTPError as exc:
            return _record(self.state, kind, url, None, exc), ""
        return _record(self.state, kind, url, response, None), response.text

    def post_sync(
        self, kind: str, url: str, *, headers: Mapping[str, str], form: Mapping[str, str]
    ) -> int | None:
        """Like :meth:`post`, from a plain thread (the in-process helpers of tests and demos)."""
        try:
            with httpx.Client(timeout=10.0) as client:
                response = client.post(url, data=form, headers=dict(headers))
        except httpx.HTTPError as exc:
            return _record(self.state, kind, url, None, exc)
        return _record(self.state, kind, url, response, None)

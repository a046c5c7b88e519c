"""Shared parts of the delivery benchmark: databases, fake providers, Prefect counts, RSS.

Everything here is a real part: a throw-away SQLite file or PostgreSQL database, the fake
providers as a separate ``dunning fakes serve`` process (so their CPU does not share our GIL),
and the Prefect API the flows report to.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, func, select

from dunning.db import get_engine, upgrade
from dunning.db.models import DeliveryEvent, Reminder, ReminderRun
from dunning.devtools.scratch import scratch_database
from dunning.devtools.seed import seed_portfolio

ROOT = Path(__file__).resolve().parents[1]
#: Tuesday 24 Nov 2026, 15:00 UTC: inside the send window of the seeds' American and European
#: customers, so most due reminders go out rather than being deferred.
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class PeakRss:
    """Samples the resident set size of this process and of its composing worker processes
    (dunning.render.processes, part of a run's delivery) in a thread; ``peak_mb`` is the
    highest sum seen."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    @staticmethod
    def current_mb() -> float:
        """The resident set size now of this process and its composing workers, in MiB
        (Linux /proc)."""
        from dunning.render.processes import worker_pids

        pids = ["self", *map(str, worker_pids())]
        pages = 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/statm") as fh:
                    pages += int(fh.read().split()[1])
            except (OSError, IndexError, ValueError):  # a worker that just ended
                continue
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self.current_mb())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self.peak_mb = self.current_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self.current_mb())


@dataclass
class Measure:
    """Wall time, process CPU time and peak RSS of one timed block."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def measured() -> Iterator[Measure]:
    """A Measure filled in when the block ends."""
    m = Measure()
    wall, cpu = time.perf_counter(), time.process_time()
    with PeakRss() as rss:
        yield m
    m.wall_s = time.perf_counter() - wall
    m.cpu_s = time.process_time() - cpu
    m.peak_rss_mb = rss.peak_mb


def figures(m: Measure, messages: int) -> dict[str, Any]:
    """The JSON figures of one measured run that sent ``messages``."""
    return {
        "messages": messages,
        "wall_s": round(m.wall_s, 3),
        "messages_per_s": round(messages / m.wall_s, 1) if m.wall_s else None,
        "cpu_ms_per_message": round(1000 * m.cpu_s / messages, 3) if messages else None,
        "peak_rss_mb": round(m.peak_rss_mb, 1),
        **m.extra,
    }


@contextlib.contextmanager
def bench_database(backend: str, pg_url: str, workdir: Path) -> Iterator[str]:
    """The URL of a fresh, migrated database; a PostgreSQL one is dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
        upgrade(url)
        yield url
        get_engine(url).dispose()
        return
    with scratch_database(pg_url, "dunning_bench") as url:
        try:
            upgrade(url)
            yield url
        finally:
            get_engine(url).dispose()
            get_engine.cache_clear()  # type: ignore[attr-defined]


def seed(url: str, invoices: int, customers: int) -> dict[str, int]:
    """The seed counts after writing a reproducible portfolio into ``url``."""
    return seed_portfolio(get_engine(url), customers, invoices, 7, AS_OF.date())


def reset_ledger(url: str) -> None:
    """Forget every reminder (and its events and runs) so the next contender starts equal."""
    with get_engine(url).begin() as conn:
        for table in (DeliveryEvent, Reminder, ReminderRun):
            conn.execute(delete(table))


def ledger_counts(url: str) -> dict[str, int]:
    """Reminders by status."""
    with get_engine(url).connect() as conn:
        rows = conn.execute(select(Reminder.status, func.count()).group_by(Reminder.status))
        return {str(s): int(n) for s, n in rows}


@dataclass
class Fakes:
    """The fake providers in their own process: base URL and the DUNNING_* variables."""

    base_url: str
    env: dict[str, str]
    process: subprocess.Popen[str]

    def reset(self) -> None:
        """Make the fakes forget what they accepted."""
        httpx.post(f"{self.base_url}/_fake/reset", timeout=30).raise_for_status()

    def received(self) -> list[dict[str, Any]]:
        """Every accepted message (provider, to, reminder_id, received_at, ...)."""
        response = httpx.get(f"{self.base_url}/_fake/messages", timeout=120)
        response.raise_for_status()
        return list(response.json()["messages"])


@contextlib.contextmanager
def fake_providers(latency_ms: float, rate_limit: float = 0.0) -> Iterator[Fakes]:
    """Fake Twilio and SendGrid served by ``dunning fakes serve`` on a free port."""
    cmd = [
        sys.executable,
        "-m",
        "dunning",
        "fakes",
        "serve",
        "--port",
        "0",
        "--json",
        "--no-callbacks",
        "--latency-ms",
        str(latency_ms),
        "--rate-limit",
        str(rate_limit),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("`dunning fakes serve` exited before printing its address")
        env = json.loads(line)
        yield Fakes(env["DUNNING_TWILIO_BASE_URL"], env, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` set in os.environ for the block, the previous values restored after; the
    settings root is read again on the way in and out (``dunning.config.reload_settings``)."""
    from dunning.config import reload_settings

    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    reload_settings()
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reload_settings()


def task_run_count(flow_run_id: uuid.UUID | None) -> int:
    """How many task runs the Prefect server recorded for ``flow_run_id``."""
    return len(task_run_names(flow_run_id))


def task_run_names(flow_run_id: uuid.UUID | None) -> list[str]:
    """The names of the task runs the Prefect server recorded for ``flow_run_id``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    if flow_run_id is None:
        return []
    flt = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    page, names = 200, []
    with get_client(sync_client=True) as client:
        # Why pages: the sync client has no count and the server caps a read at 200 rows.
        while True:
            runs = client.read_task_runs(
                flow_run_filter=flt, sort=TaskRunSort.ID_DESC, limit=page, offset=len(names)
            )
            names += [r.name for r in runs]
            if len(runs) < page:
                return names


# The delivery tasks' run names: "deliver email batch 3/12 (200)".
DELIVERY_TASKS = " batch "


def delivery_window_s(flow_run_id: uuid.UUID | None, task_name: str = DELIVERY_TASKS) -> float:
    """Seconds from the first ``task_name`` run's start to the last one's end, as the Prefect
    server recorded them (0.0 when none are recorded)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterName,
    )

    if flow_run_id is None:
        return 0.0
    flt = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    by_name = TaskRunFilter(name=TaskRunFilterName(like_=task_name))
    starts: list[dt.datetime] = []
    ends: list[dt.datetime] = []
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            runs = client.read_task_runs(
                flow_run_filter=flt, task_run_filter=by_name, limit=200, offset=offset
            )
            starts += [r.start_time for r in runs if r.start_time]
            ends += [r.end_time for r in runs if r.end_time]
            offset += len(runs)
            if len(runs) < 200:
                break
    return (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0


def recorded_task_runs(flow_run_id: uuid.UUID | None, expected: int, settle_s: float = 20.0) -> int:
    """Task runs recorded for the flow run, waiting up to ``settle_s`` for events to land.

    Why the wait: task runs reach the server as events, written asynchronously after the flow
    returned; counting at once would blame the server for records still in flight.
    """
    deadline = time.monotonic() + settle_s
    count = task_run_count(flow_run_id)
    while count < expected and time.monotonic() < deadline:
        time.sleep(1.0)
        count = task_run_count(flow_run_id)
    return count


def per_second_windows(stamps: list[str]) -> list[int]:
    """Messages per whole 1-s window from the first receive timestamp (ISO strings)."""
    if not stamps:
        return []
    times = sorted(dt.datetime.fromisoformat(s).timestamp() for s in stamps)
    start = times[0]
    counts = [0] * (int(times[-1] - start) + 1)
    for t in times:
        counts[int(t - start)] += 1
    return counts


@dataclass
class ApiCalls:
    """Requests to the Prefect API counted during a block: HTTP requests (by path, each
    retry and each 423 of a rate limit included) and events sent over the events websocket
    (task-run states, concurrency events; each is a message to the server)."""

    http: int = 0
    events: int = 0
    by_path: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """HTTP requests plus events: every call the Prefect server (or Cloud) receives."""
        return self.http + self.events

    def per_1000(self, messages: int) -> dict[str, Any]:
        """The JSON figures for a run that sent ``messages``."""
        scale = 1000 / messages if messages else 0.0
        top = sorted(self.by_path.items(), key=lambda kv: -kv[1])[:12]
        return {
            "http_requests": self.http,
            "events": self.events,
            "total": self.total,
            "per_1000_messages": round(self.total * scale, 2) if messages else None,
            "http_per_1000_messages": round(self.http * scale, 2) if messages else None,
            "events_per_1000_messages": round(self.events * scale, 2) if messages else None,
            "http_by_path": dict(top),
        }


@contextlib.contextmanager
def prefect_api_calls() -> Iterator[ApiCalls]:
    """Counts what this process sends the Prefect API (``PREFECT_API_URL``) in the block.

    Why at the transport and the events client: the Prefect client retries (429, 423 of a
    rate limit, 5xx) inside its own ``send``, and each retry is a call the server counts;
    the httpx transports see every one. Task-run states travel as events over a websocket,
    one message each, counted at ``PrefectEventsClient._emit``.
    """
    from prefect.events.clients import PrefectEventsClient
    from prefect.settings import PREFECT_API_URL

    base = httpx.URL(str(PREFECT_API_URL.value() or ""))
    calls = ApiCalls()
    lock = threading.Lock()

    def count(request: httpx.Request) -> None:
        url = request.url
        if url.host == base.host and url.port == base.port:
            path = url.path.removeprefix(base.path)
            # Ids make every path unique: keep the route's shape.
            key = "/".join(
                "{id}" if len(p) == 36 and p.count("-") == 4 else p for p in path.split("/")
            )
            with lock:
                calls.http += 1
                calls.by_path[f"{request.method} {key}"] = (
                    calls.by_path.get(f"{request.method} {key}", 0) + 1
                )

    sync_send = httpx.HTTPTransport.handle_request
    async_send = httpx.AsyncHTTPTransport.handle_async_request
    emit = PrefectEventsClient._emit

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        count(request)
        return sync_send(self, request)

    async def handle_async_request(
        self: httpx.AsyncHTTPTransport, request: httpx.Request
    ) -> httpx.Response:
        count(request)
        return await async_send(self, request)

    async def counted_emit(self: PrefectEventsClient, event: Any) -> None:
        with lock:
            calls.events += 1
        await emit(self, event)

    httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign]
    httpx.AsyncHTTPTransport.handle_async_request = handle_async_request  # type: ignore[method-assign]
    PrefectEventsClient._emit = counted_emit  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        httpx.HTTPTransport.handle_request = sync_send  # type: ignore[method-assign]
        httpx.AsyncHTTPTransport.handle_async_request = async_send  # type: ignore[method-assign]
        PrefectEventsClient._emit = emit  # type: ignore[method-assign]


def flush_prefect_workers(timeout: float = 60.0) -> None:
    """Send what Prefect's background workers still hold (events, logs) now; they start
    again on the next use."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (EventsWorker, APILogWorker):
        worker.drain_all(timeout=timeout, at_exit=False)

"""Composing a delivery batch's messages in worker processes.

Why: composition (Jinja templates, Babel's dates and amounts) is pure Python and was more than
half of a delivery task's CPU in a profile of a 5k-message run; the delivery tasks are threads
of the flow run's process, so every batch composed under one GIL while the other cores idled.
A batch of at least ``MIN_UNITS`` messages is handed to ``DUNNING_COMPOSE_PROCESSES`` worker
processes; the delivery thread waits on a pipe without the GIL, so the other batches' claims,
sends and records go on meanwhile. Smaller batches (a test, an hourly run with a handful due)
compose in their own thread: handing them over costs more than it saves.

Why plain subprocesses (``python -c``, running ``_serve``) and not multiprocessing: a
flow run's process has threads, which ``fork`` would copy in whatever state they are, and
``spawn`` imports the parent's main module again in every child, so a notebook-style script
that calls the flow at top level would run again in each worker. A worker here imports only
composition, reads length-prefixed pickled requests on stdin and answers on stdout. Both ends
are this package: nothing else is unpickled.

Workers start at a run's first large batch, get the run's channel settings once, and stop at
``shutdown`` (the end of the reminder run) or when the settings change. A worker that dies
(killed for memory, say) is dropped: its chunk composes in the delivery thread, and the next
batch starts a new worker.
"""

from __future__ import annotations

import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage, ReminderData
from dunning.errors import TemplateError

if TYPE_CHECKING:
    from dunning.policy.model import Policy

#: The fewest messages a batch hands to the worker processes; fewer compose in the thread.
MIN_UNITS = 64

#: One message's composition: the message, or the TemplateError that stopped it.
Composed = OutboundMessage | TemplateError

_HEADER = struct.Struct("!Q")  # a frame: its length in bytes, then the pickle


class WorkerDied(RuntimeError):
    """A composing worker process ended or broke its pipe."""


def processes_for(settings: ChannelSettings) -> int:
    """How many worker processes compose: ``settings.compose_processes`` when set (0: none,
    compose in the delivery threads), else one less than the CPUs this process may use (at
    least 1 with two or more CPUs, 0 with one)."""
    if settings.compose_processes is not None:
        return settings.compose_processes
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(cpus - 1, 0)


class _Worker:
    """One composing process and its pipes (used by one thread at a time)."""

    def __init__(self, settings: ChannelSettings) -> None:
        # The parent's import path first, so a checkout run without installing finds the
        # package; the environment is inherited as it is.
        paths = [p for p in sys.path if p and os.path.isdir(p)]
        boot = f"import sys; sys.path[:0] = {paths!r}; from {__name__} import _serve; _serve()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", boot], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in: IO[bytes] = self.proc.stdin
        self._out: IO[bytes] = self.proc.stdout
        self._broken: OSError | None = None
        _write(self._in, settings)

    def send(self, units: list[list[ReminderData]], grouped: bool, policy: Policy | None) -> None:
        """Hands ``units`` to the worker; a broken pipe is kept for ``receive`` to raise."""
        try:
            _write(self._in, (units, grouped, policy))
        except OSError as exc:
            self._broken = exc

    def receive(self) -> list[Composed]:
        """The messages of the units last sent; raises WorkerDied when the worker is gone, and
        the error a bug in composition raised there."""
        try:
            if self._broken is not None:
                raise self._broken
            answer = _read(self._out)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            raise WorkerDied(f"composing worker {self.proc.pid} ended: {exc}") from None
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[no-any-return]

    def stop(self, timeout: float = 5.0) -> None:
        """Ends the worker: end of input, then a kill if it does not exit in ``timeout``."""
        try:
            self._in.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


class _Pool:
    """Up to ``size`` workers started with ``settings``; idle ones wait in a queue."""

    def __init__(self, settings: ChannelSettings, size: int) -> None:
        self.settings = settings
        self.size = size
        self.idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.all: list[_Worker] = []

    @property
    def started(self) -> int:
        """Workers started and not dropped."""
        return len(self.all)

    def take(self, block: bool) -> _Worker | None:
        """An idle worker, a new one while fewer than ``size`` exist, else (``block``) the
        next one given back; None when not blocking and none is free."""
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            pass
        with self.lock:
            if len(self.all) < self.size:
                worker = _Worker(self.settings)
                self.all.append(worker)
                return worker
        return self.idle.get() if block else None

    def give_back(self, worker: _Worker) -> None:
        self.idle.put(worker)

    def drop(self, worker: _Worker) -> None:
        """Forget a dead worker; a later ``take`` may start another."""
        with self.lock:
            if worker in self.all:
                self.all.remove(worker)
        worker.stop(timeout=0.1)

    def stop(self) -> None:
        with self.lock:
            workers, self.all = self.all, []
        for worker in workers:
            worker.stop()


_lock = threading.Lock()
_pool: _Pool | None = None


def compose_units(
    units: Sequence[Sequence[ReminderData]],
    settings: ChannelSettings,
    *,
    grouped: bool = False,
    policy: Policy | None = None,
) -> list[Composed]:
    """Each unit's message, in order: a unit of one reminder is composed by
    ``dunning.render.compose``, a unit of several (``grouped``: one message per customer) by
    ``compose_group`` with ``policy``. A TemplateError is returned in its unit's place, not
    raised; any other error is raised.

    In worker processes (see the module docstring) when ``units`` has at least ``MIN_UNITS``
    and ``processes_for(settings)`` > 0; else in this thread. The batch is split over the
    workers free now (at least one, waited for)."""
    lists = [list(u) for u in units]
    processes = processes_for(settings)
    if processes <= 0 or len(lists) < MIN_UNITS:
        return _compose_here(lists, settings, grouped, policy)
    pool = _pool_for(settings, processes)
    first = pool.take(block=True)
    assert first is not None
    workers = [first]
    while len(workers) < processes and len(lists) >= MIN_UNITS * (len(workers) + 1):
        more = pool.take(block=False)
        if more is None:
            break
        workers.append(more)
    # One chunk per worker, their sizes at most one apart; each worker gets its chunk at once,
    # then the answers are read in order (a worker that finishes first waits in its pipe).
    size, extra = divmod(len(lists), len(workers))
    bounds = [k * size + min(k, extra) for k in range(len(workers) + 1)]
    chunks = [lists[bounds[k] : bounds[k + 1]] for k in range(len(workers))]
    for worker, chunk in zip(workers, chunks, strict=True):
        worker.send(chunk, grouped, policy)
    out: list[Composed] = []
    error: Exception | None = None
    for worker, chunk in zip(workers, chunks, strict=True):
        try:
            out.extend(worker.receive())
        except WorkerDied:
            pool.drop(worker)
            out.extend(_compose_here(chunk, settings, grouped, policy))
            continue
        except Exception as exc:  # a bug in composition, raised in the worker: it is fine
            error = error or exc
        pool.give_back(worker)
    if error is not None:
        raise error
    return out


def worker_pids() -> list[int]:
    """The process ids of the composing workers running now (none between runs)."""
    pool = _pool
    return [w.proc.pid for w in list(pool.all)] if pool else []


def shutdown() -> None:
    """Stop the worker processes, if any (the end of a reminder run); the next batch that
    needs them starts new ones."""
    global _pool
    with _lock:
        current, _pool = _pool, None
    if current is not None:
        current.stop()


def _pool_for(settings: ChannelSettings, processes: int) -> _Pool:
    """The pool whose workers have ``settings``, a new one when there is none or it was
    started with other settings or another size (that one is stopped)."""
    global _pool
    stale = None
    with _lock:
        if _pool is not None and (_pool.settings is not settings or _pool.size != processes):
            stale, _pool = _pool, None
        if _pool is None:
            _pool = _Pool(settings, processes)
        current = _pool
    if stale is not None:
        stale.stop()
    return current


def _compose_here(
    units: list[list[ReminderData]],
    settings: ChannelSettings,
    grouped: bool,
    policy: Policy | None,
) -> list[Composed]:
    from dunning.render import compose, compose_group

    out: list[Composed] = []
    for unit in units:
        try:
            if grouped and len(unit) > 1:
                out.append(compose_group(unit, settings, policy))
            else:
                out.append(compose(unit[0], settings))
        except TemplateError as exc:
            # Sent back without its traceback; the message names template, line and field.
            out.append(TemplateError(str(exc)))
    return out


def _write(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _read(stream: IO[bytes]) -> Any:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError("the other end closed the pipe")
    (size,) = _HEADER.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the other end closed the pipe mid-frame")
    return pickle.loads(data)  # noqa: S301  (our own process on the other end)


def _serve() -> None:
    """A worker's life: settings, then requests (units, grouped, policy) until end of input;
    each answer is the messages, or the error that stopped the chunk."""
    requests = sys.stdin.buffer
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # a stray print must not corrupt the answers
    import dunning.render  # noqa: F401  (before the first request, not during it)

    try:
        settings = _read(requests)
    except EOFError:
        return
    while True:
        try:
            units, grouped, policy = _read(requests)
        except EOFError:
            return
        try:
            answer: Any = _compose_here(units, settings, grouped, policy)
        except Exception as exc:  # a bug: raised again in the delivery thread
            answer = RuntimeError(f"composing worker: {type(exc).__name__}: {exc}")
        _write(answers, answer)

"""Progress of a reminder run's delivery, for whoever runs the flow in this process.

The flow reports after each delivery batch; ``dunning run`` listens and draws a progress bar.
A run on a worker reports to nobody here (its progress artifact shows the same in the UI).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryProgress:
    """Where a run's delivery stands: messages (reminders) handled of those planned, and
    batches finished of all batches."""

    planned: int
    done: int
    sent: int
    failed: int
    skipped: int
    batches: int
    batches_done: int


Listener = Callable[[DeliveryProgress], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


@contextmanager
def listen(callback: Listener) -> Iterator[None]:
    """Calls ``callback`` with each progress report of a run in this process while inside."""
    with _lock:
        _listeners.append(callback)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(callback)


def report(progress: DeliveryProgress) -> None:
    """Hands ``progress`` to every listener; a failing listener never fails the run."""
    with _lock:
        listeners = list(_listeners)
    for callback in listeners:
        try:
            callback(progress)
        except Exception:  # noqa: S110 (a progress display must not stop delivery)
            pass

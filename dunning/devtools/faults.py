"""Fault injection for reliability tests: kill or pause this process at a named point.

``DUNNING_CRASH_AT`` names the point, how many times it must be reached first, and what to do:

- ``after_claim:3``        SIGKILL this process the 3rd time ``after_claim`` is reached;
- ``after_claim``          the same, the 1st time;
- ``after_claim:1:pause``  stop there until the test says go on (see :func:`pause_files`),
  e.g. to terminate the database connection under a running delivery.

Points in ``dunning.delivery``: ``before_claim``, ``after_claim``, ``after_send`` (the provider
accepted, nothing recorded yet) and ``after_record``. With the variable unset the hook costs one
environment lookup; the product reaches it through dunning.faultpoint only when the variable is set.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path

ENV = "DUNNING_CRASH_AT"
#: Directory of the pause hand-shake files (default: the system temp directory).
PAUSE_DIR_ENV = "DUNNING_FAULT_DIR"
POINTS = ("before_claim", "after_claim", "after_send", "after_record")
ACTIONS = ("kill", "pause")
#: Longest a paused process waits for the test before going on by itself (never hangs a run).
PAUSE_LIMIT_S = 120.0

_lock = threading.Lock()
_reached: dict[str, int] = {}


def parse(spec: str) -> tuple[str, int, str]:
    """The (point, nth time, action) a ``DUNNING_CRASH_AT`` value asks for; ValueError if bad."""
    parts = spec.strip().split(":")
    point = parts[0]
    if point not in POINTS or len(parts) > 3:
        raise ValueError(
            f"{ENV}={spec!r} is not understood: use <point>[:<n>][:kill|pause] with point one "
            f"of {', '.join(POINTS)}"
        )
    try:
        nth = int(parts[1]) if len(parts) > 1 and parts[1] else 1
    except ValueError:
        raise ValueError(f"{ENV}={spec!r}: the count {parts[1]!r} is not a whole number") from None
    action = parts[2] if len(parts) > 2 else "kill"
    if nth < 1 or action not in ACTIONS:
        raise ValueError(f"{ENV}={spec!r}: the count must be >= 1 and the action kill or pause")
    return point, nth, action


def pause_files(point: str, directory: Path | None = None) -> tuple[Path, Path]:
    """The (paused, resume) marker files of ``point`` in ``directory`` (default: from
    DUNNING_FAULT_DIR): the process writes the first and waits for the second to appear."""
    base = directory or Path(os.environ.get(PAUSE_DIR_ENV) or tempfile.gettempdir())
    return base / f"dunning-{point}.paused", base / f"dunning-{point}.resume"


def crash_point(name: str) -> None:
    """Return at once, unless ``DUNNING_CRASH_AT`` selects this point and this time: then the
    process is killed with SIGKILL (no clean-up, like ``kill -9``) or paused."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, nth, action = parse(spec)
    if point != name:
        return
    with _lock:
        _reached[name] = count = _reached.get(name, 0) + 1
    if count != nth:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
        return
    paused, resume = pause_files(name)
    paused.write_text(str(os.getpid()))
    deadline = time.monotonic() + PAUSE_LIMIT_S
    while not resume.exists() and time.monotonic() < deadline:
        time.sleep(0.05)

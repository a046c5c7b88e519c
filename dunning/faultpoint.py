"""The one seam where a reliability test may kill or pause a running delivery.

``crash_point(name)`` costs one environment lookup when ``DUNNING_CRASH_AT`` is unset, which is
always the case in production. When a test sets it, the fault-injection code is loaded by name
from :mod:`dunning.devtools.faults` (test tooling, outside the product's import graph: the
import-linter contracts forbid a static import of ``dunning.devtools`` from the product).
"""

from __future__ import annotations

import importlib
import os

ENV = "DUNNING_CRASH_AT"


def crash_point(name: str) -> None:
    """Reach the named fault point (``before_claim``, ``after_claim``, ``after_send``,
    ``after_record``); a no-op unless ``DUNNING_CRASH_AT`` is set."""
    if not os.environ.get(ENV):
        return
    importlib.import_module("dunning.devtools.faults").crash_point(name)

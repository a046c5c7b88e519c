"""Fixtures of the reliability tests: fakes with faults, the Prefect API for subprocesses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dunning.devtools.fakes import RunningFakes, run_fakes


@pytest.fixture
def fakes() -> Iterator[RunningFakes]:
    """Both fake providers, healthy, counting what they accept."""
    with run_fakes(seed=7) as running:
        yield running

"""Two reminder runs for the same as-of time, started together: zero duplicates."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dunning.devtools.fakes import RunningFakes
from dunning.devtools.faults import pause_files
from tests.reliability.support import (
    duplicates,
    ledger_rows,
    portfolio,
    run_env,
    sent_matches_provider,
    start_run,
    statuses,
    summary,
    well_formed,
)

pytestmark = [pytest.mark.slow, pytest.mark.prefect]


def test_two_runs_started_together_send_each_reminder_once(
    prefect_server: None, engine, db_url: str, fakes: RunningFakes, tmp_path: Path
) -> None:
    planned = portfolio(engine, 12)
    started = time.monotonic()
    # Each run plans, then waits at the claim until both are there; then both claim the same
    # rows at the same moment (a process start takes seconds, so a plain start is not together).
    gates = [tmp_path / "a", tmp_path / "b"]
    runs = []
    for gate in gates:
        gate.mkdir()
        env = run_env(
            db_url,
            fakes.env(),
            tmp_path / "home",
            DUNNING_FAULT_DIR=str(gate),
            DUNNING_CRASH_AT="before_claim:1:pause",
        )
        runs.append(start_run(env))
    try:
        for gate, proc in zip(gates, runs, strict=True):
            while not pause_files("before_claim", gate)[0].exists():
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.05)
        for gate in gates:
            pause_files("before_claim", gate)[1].touch()
        reports = []
        for proc in runs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-2000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in runs:
            if proc.poll() is None:
                proc.kill()

    rows = ledger_rows(engine)
    assert statuses(rows) == {"sent": planned}
    assert duplicates(fakes) == {}
    assert len(fakes.received()) == planned
    assert sent_matches_provider(rows, fakes) == []
    assert well_formed(rows) == []
    # Each run reports only what it sent itself; together they sent everything once.
    sent_by_run = [r["counts"]["sent"] for r in reports]
    assert sum(sent_by_run) == planned
    summary(
        "concurrency",
        backend=engine.dialect.name,
        planned=planned,
        sent_by_run=sent_by_run,
        duplicates=0,
        seconds=round(time.monotonic() - started, 1),
    )

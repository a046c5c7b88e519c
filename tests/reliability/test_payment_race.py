"""A payment recorded between plan and claim stops the reminder: the ledger row ends
skipped(paid) and the provider receives nothing for that invoice."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from dunning import ledger
from dunning.channels import get_channel
from dunning.config import reload_settings
from dunning.delivery import deliver_batch
from dunning.devtools.fakes import RunningFakes
from dunning.devtools.faults import pause_files
from dunning.render import compose
from tests.factories import add_payment
from tests.reliability.support import ledger_rows, portfolio, run_env, start_run, statuses


def _plan(engine: Engine, customers: int) -> list[int]:
    """Planned ledger rows for the overdue_1 reminders of the test portfolio (email and SMS)."""
    portfolio(engine, customers)
    sends = pd.DataFrame(
        [
            {
                "invoice_id": i + 1,
                "customer_id": f"R{i:03d}",
                "stage": "overdue_1",
                "channel": channel,
                "segment": "regular",
                "tone": "friendly",
                "not_before": None,
            }
            for i in range(customers)
            for channel in ("email", "sms")
        ]
    )
    return ledger.record_plan(engine, sends, run_id="race")


def test_a_payment_between_plan_and_claim_stops_the_reminder(
    engine: Engine, fakes: RunningFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in fakes.env().items():
        monkeypatch.setenv(name, value)
        reload_settings()
    ids = _plan(engine, 2)
    assert len(ids) == 4
    add_payment(engine, 1, "100.00", "race-pay-1")  # invoice 1 paid in full after planning

    result = deliver_batch(
        engine,
        ids,
        claimer="race",
        channels={"email": get_channel("email"), "sms": get_channel("sms")},
        compose=compose,
        lease_seconds=60,
    )

    assert result.skip_reasons == {"paid": 2}
    assert result.sent == 2
    rows = ledger_rows(engine)
    assert statuses(rows) == {"skipped": 2, "sent": 2}
    assert {r.reason for r in rows if r.status == "skipped"} == {"paid"}
    received = fakes.received()
    assert {m.to for m in received} == {"r001@example.com", "+14155550001"}
    assert not any("INV-R000" in m.body for m in received)


@pytest.mark.slow
@pytest.mark.prefect
def test_a_payment_landing_while_the_run_waits_to_claim_stops_the_reminder(
    prefect_server: None, engine: Engine, db_url: str, fakes: RunningFakes, tmp_path: Path
) -> None:
    portfolio(engine, 2)
    env = run_env(
        db_url,
        fakes.env(),
        tmp_path / "home",
        DUNNING_FAULT_DIR=str(tmp_path),
        DUNNING_CRASH_AT="before_claim:1:pause",
    )
    paused, resume = pause_files("before_claim", tmp_path)
    proc = start_run(env, "--batch-size", "10")  # one batch: every claim waits at the pause
    try:
        # The run has planned and recorded its ledger rows and now waits before claiming.
        while not paused.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        assert statuses(ledger_rows(engine)) == {"planned": 4}
        add_payment(engine, 1, "100.00", "race-pay-2")
        resume.touch()
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    rows = ledger_rows(engine)
    assert statuses(rows) == {"skipped": 2, "sent": 2}
    assert {r.reason for r in rows if r.status == "skipped"} == {"paid"}
    assert not any("INV-R000" in m.body for m in fakes.received())
    assert len(fakes.received()) == 2

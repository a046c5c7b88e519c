"""No silent stops, drilled on a real `prefect server start` with `dunning setup-prefect`, the
payment-reminders deployment from prefect.yaml and real process workers.

A worker (and the flow process it started) is SIGKILLed while a reminder run is sending: the
run is left Running with no one behind it — a zombie holding the deployment's one concurrency
slot. The "crash zombie flow runs" automation must crash it once its heartbeats stop, the
operator must get the Crashed alert, and the next run, queued behind it, must start on another
worker and finish the job with no reminder sent twice. A run left Pending by a worker that died
while submitting it must raise the Pending alert.

Thresholds are shortened for the drill: heartbeats every 30 s (Prefect's minimum), a zombie
after 60 s of silence, Pending alert after 30 s.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from alert_support import alert_inbox
from server_support import api, run_cli
from sqlalchemy import func, select

from bench.common import fake_providers
from dunning.alerts import ZOMBIE_AUTOMATION
from dunning.db import get_engine, upgrade
from dunning.db.models import Reminder
from dunning.devtools.seed import seed_portfolio
from dunning.prefect_setup import local_server

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
HEARTBEAT_S, ZOMBIE_S, PENDING_S = 30, 60, 30
WAIT_S = 360.0  # upper bound for the whole drill on a loaded 2-core box


def _parameters(deployment: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` in the deployment's parameter shape (flat, or nested under ``params``)."""
    properties = deployment.get("parameter_openapi_schema", {}).get("properties", {})
    return {"params": values} if set(properties) == {"params"} else values


def _start(env: dict[str, str], deployment: dict[str, Any]) -> str:
    """A new run of ``deployment`` with fast heartbeats, sending one message at a time."""
    values = {"as_of": AS_OF.isoformat(), "batch_size": 1, "concurrency": 1}
    run = api(
        env,
        "POST",
        f"/deployments/{deployment['id']}/create_flow_run",
        {
            "parameters": _parameters(deployment, values),
            "state": {"type": "SCHEDULED"},
            "job_variables": {"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S)}},
        },
    )
    return str(run["id"])


def _orphan_pending(env: dict[str, str], flow_id: str) -> str:
    """A payment-reminders run a worker moved to Pending and then died before starting."""
    run = api(
        env,
        "POST",
        "/flow_runs/",
        {"flow_id": flow_id, "name": "orphaned-submission", "state": {"type": "SCHEDULED"}},
    )
    api(
        env,
        "POST",
        f"/flow_runs/{run['id']}/set_state",
        {"state": {"type": "PENDING"}, "force": True},
    )
    return str(run["id"])


@contextlib.contextmanager
def _worker(env: dict[str, str], name: str, log: Path) -> Iterator[psutil.Process]:
    """A process worker on the pool; it and every process it started are killed on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(BIN / "prefect"),
                "worker",
                "start",
                "--pool",
                "dunning",
                "--type",
                "process",
                "--name",
                name,
            ],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield psutil.Process(proc.pid)
    finally:
        _kill_tree(proc.pid)
        proc.wait(timeout=30)


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and all its descendants: no process gets to say goodbye."""
    with contextlib.suppress(psutil.NoSuchProcess):
        parent = psutil.Process(pid)
        for proc in [*parent.children(recursive=True), parent]:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


def _until(what: str, check: Any, logs: list[Path], timeout: float = WAIT_S) -> Any:
    """``check()``'s first truthy answer, polled every second for up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            tails = {p.name: p.read_text(errors="replace")[-2500:] for p in logs if p.exists()}
            raise AssertionError(f"{what}: not within {timeout} s\n{tails}")
        time.sleep(1)


def test_a_zombie_left_by_a_killed_worker_is_crashed_alerted_and_the_next_run_starts(
    tmp_path: Path,
) -> None:
    db_url = f"sqlite:///{tmp_path / 'dunning.db'}"
    upgrade(db_url)
    engine = get_engine(db_url)
    seed_portfolio(engine, 30, 80, 7, AS_OF.date())

    def sent() -> int:
        with engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).where(Reminder.status == "sent")).scalar_one()
            )

    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    with (
        alert_inbox() as alerts,
        fake_providers(latency_ms=1500.0) as fakes,
        local_server(tmp_path / "prefect") as env,
    ):
        env.update(
            {
                **fakes.env,
                "DUNNING_DATABASE_URL": db_url,
                "DUNNING_HOME": str(tmp_path / "home"),
                "DUNNING_LEASE_SECONDS": "10",
                "DUNNING_ALERT_WEBHOOK_URL": alerts.url,
                "DUNNING_ALERT_ZOMBIE_SECONDS": str(ZOMBIE_S),
                "DUNNING_ALERT_PENDING_SECONDS": str(PENDING_S),
                "PREFECT_WORKER_QUERY_SECONDS": "2",
                "PREFECT_LOGGING_LEVEL": "INFO",
            }
        )
        setup = json.loads(run_cli([str(BIN / "dunning"), "setup-prefect", "--json"], env))
        assert ZOMBIE_AUTOMATION in {a["name"] for a in setup["automations"]}
        run_cli([str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "payment-reminders"], env)
        deployment = api(env, "GET", "/deployments/name/payment-reminders/payment-reminders")

        zombie = _start(env, deployment)
        orphan = _orphan_pending(env, deployment["flow_id"])
        with _worker(env, "worker-a", logs[0]) as worker_a:
            _until("the first run sends", lambda: sent() >= 1, logs)
            assert api(env, "GET", f"/flow_runs/{zombie}")["state"]["type"] == "RUNNING"
            _kill_tree(worker_a.pid)  # mid-send: the worker and the flow process, SIGKILL
        killed_at = dt.datetime.now(dt.UTC)
        sent_by_zombie = sent()
        follower = _start(env, deployment)

        with _worker(env, "worker-b", logs[1]):
            crashed = _until(
                "the zombie is crashed",
                lambda: (
                    (r := api(env, "GET", f"/flow_runs/{zombie}"))["state"]["type"] == "CRASHED"
                    and r
                ),
                logs,
            )
            done = _until(
                "the next run ends",
                lambda: (
                    (r := api(env, "GET", f"/flow_runs/{follower}"))["state"]["type"] in FINAL and r
                ),
                logs,
            )
            crash_alert = alerts.wait_for(crashed["name"], attempts=120)
            pending_alert = alerts.wait_for("orphaned-submission", attempts=120)
            orphan_state = api(env, "GET", f"/flow_runs/{orphan}")["state"]["type"]
        received = fakes.received()

    # The zombie was crashed by our automation, not by anything else.
    assert "no heartbeat" in crashed["state"]["message"], crashed["state"]
    # The queued run started only once the zombie's slot was free, and finished the job.
    assert done["state"]["type"] == "COMPLETED", done["state"]
    crashed_at = dt.datetime.fromisoformat(crashed["state"]["timestamp"])
    started_at = dt.datetime.fromisoformat(done["start_time"])
    assert started_at >= crashed_at
    # The operator heard about it, with what happened to the mid-send reminders.
    assert crash_alert, alerts.received
    assert crash_alert[0]["subject"] == "dunning: a reminder run failed"
    assert "entered Crashed" in crash_alert[0]["body"]
    assert "stay claimed" in crash_alert[0]["body"]
    assert pending_alert and pending_alert[0]["subject"] == "dunning: a run is stuck in Pending"
    assert orphan_state == "PENDING"  # alerted, left for the operator (the runbook says how)
    # The ledger held: no reminder reached the provider twice.
    keys = Counter(m["reminder_id"] or f"{m['provider']}:{m['to']}:{m['body']}" for m in received)
    assert {k: n for k, n in keys.items() if n > 1} == {}
    assert sent() > sent_by_zombie
    print(
        f"drill: zombie crashed {(crashed_at - killed_at).total_seconds():.0f} s after the "
        f"kill (window {ZOMBIE_S} s, heartbeat {HEARTBEAT_S} s); next run started "
        f"{(started_at - crashed_at).total_seconds():.0f} s after the crash; "
        f"sent {sent_by_zombie} before the kill, {sent()} in all"
    )

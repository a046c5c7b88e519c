"""`prefect deploy --all` on a real `prefect server start`, runs processed by a real worker."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from dunning.db import get_engine, upgrade
from dunning.devtools.seed import seed_portfolio
from dunning.prefect_setup import local_server

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEPLOYMENTS = {
    "payment-reminders/payment-reminders": {"batch_size": 5},
    "reminders-dry-run/dry-run": {},
    "track-responses/track-responses": {"poll_twilio": False},
}


def _run(cmd: list[str], env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(
        cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _api(env: dict[str, str], method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, env["PREFECT_API_URL"] + path, json=body, timeout=30)
    response.raise_for_status()
    return response.json() if response.content else None


def _start_runs(env: dict[str, str]) -> dict[str, str]:
    """Flow-run ids by deployment, created through the API like the UI's Run button does."""
    runs = {}
    for name, parameters in DEPLOYMENTS.items():
        flow, dep = name.split("/")
        deployment = _api(env, "GET", f"/deployments/name/{flow}/{dep}")
        run = _api(
            env,
            "POST",
            f"/deployments/{deployment['id']}/create_flow_run",
            {"parameters": parameters, "state": {"type": "SCHEDULED"}},
        )
        runs[name] = run["id"]
    return runs


def _artifacts(env: dict[str, str], run_id: str) -> dict[str, dict[str, Any]]:
    found = _api(
        env,
        "POST",
        "/artifacts/filter",
        {
            "artifacts": {"flow_run_id": {"any_": [run_id]}},
            "sort": "CREATED_DESC",
            "limit": 50,
            "offset": 0,
        },
    )
    return {a["key"]: a for a in found if a.get("key")}


def test_deploy_all_then_a_worker_runs_each_deployment(tmp_path: Path):
    db_url = f"sqlite:///{tmp_path / 'dunning.db'}"
    upgrade(db_url)
    seeded = seed_portfolio(get_engine(db_url), 12, 40, 7, dt.datetime.now(dt.UTC).date())
    get_engine(db_url).dispose()
    assert seeded["open"] > 0

    with local_server(tmp_path / "prefect") as env:
        env.update(
            {
                "DUNNING_DATABASE_URL": db_url,
                "DUNNING_HOME": os.environ["DUNNING_HOME"],
                "DUNNING_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/operator",
            }
        )
        setup = json.loads(_run([str(BIN / "dunning"), "setup-prefect", "--json"], env))
        assert setup["work_pool"]["status"] == "created"
        _run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], env)

        deployments = {f"{d['name']}": d for d in _api(env, "POST", "/deployments/filter", {})}
        assert {"payment-reminders", "track-responses", "dry-run"} <= set(deployments)
        reminders = deployments["payment-reminders"]
        assert reminders["work_pool_name"] == "dunning"
        assert reminders["enforce_parameter_schema"] is True
        assert reminders["schedules"][0]["schedule"]["cron"] == "0 * * * *"
        assert reminders["concurrency_options"]["collision_strategy"] == "ENQUEUE"
        assert deployments["dry-run"]["schedules"] == []

        runs = _start_runs(env)
        # --run-once: one poll that picks up all three runs, then waits for them to finish.
        _run(
            [
                str(BIN / "prefect"),
                "worker",
                "start",
                "--pool",
                "dunning",
                "--run-once",
                "--type",
                "process",
            ],
            env,
            timeout=240,
        )

        states = {
            name: _api(env, "GET", f"/flow_runs/{run_id}")["state"]["type"]
            for name, run_id in runs.items()
        }
        assert states == dict.fromkeys(DEPLOYMENTS, "COMPLETED"), states

        arts = _artifacts(env, runs["payment-reminders/payment-reminders"])
        assert {"reminder-run-summary", "reminder-run-failures"} <= set(arts)
        summary = arts["reminder-run-summary"]["data"]
        assert "| sent | failed | skipped | deferred |" in summary
        assert "## By stage" in summary or "| 0 | 0 | 0 | 0 |" in summary
        dry = _artifacts(env, runs["reminders-dry-run/dry-run"])
        assert "reminder-run-summary" not in dry  # dry runs publish under their own keys
        assert "| would send | skipped | deferred |" in dry["reminder-dry-run-summary"]["data"]
        assert "(dry run: nothing was sent)" in dry["reminder-dry-run-summary"]["data"]

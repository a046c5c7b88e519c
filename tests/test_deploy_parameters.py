"""The deployments' parameters on a real `prefect server start` after `prefect deploy --all`,
runs processed by a real process worker, sending to the fake providers over HTTP.

The dry-run deployment is driven with every parameter shape a user can send — the CLI's
--param and --params, the API (with and without schema enforcement), the UI form's full set of
fields, a `dry_run: false`, a nested `params` object — and the fakes receive nothing; the hourly
deployment keeps its defaults when a run overrides only `as_of`, and does send (the control
that shows the fakes were reachable); a bad date is refused when the run is created.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from dunning.db import get_engine, upgrade
from dunning.db.models import Reminder
from dunning.devtools.fakes import run_fakes
from dunning.devtools.seed import seed_portfolio
from dunning.prefect_setup import local_server

pytestmark = [pytest.mark.slow, pytest.mark.prefect]
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DRY = "reminders-dry-run/dry-run"
HOURLY = "payment-reminders/payment-reminders"


def _run(cmd: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def _ok(cmd: list[str], env: dict[str, str], timeout: float = 180) -> str:
    done = _run(cmd, env, timeout)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _api(env: dict[str, str], method: str, path: str, body: Any = None) -> httpx.Response:
    # A Prefect server on SQLite answers 503 while its database is locked by a busy moment;
    # Prefect's own client retries 502/503 (PREFECT_CLIENT_MAX_RETRIES), and so do we: at most
    # five tries, about 15 s in all.
    for attempt in range(5):
        response = httpx.request(method, env["PREFECT_API_URL"] + path, json=body, timeout=30)
        if response.status_code not in (502, 503) or attempt == 4:
            return response
        time.sleep(2**attempt)
    raise AssertionError("unreachable")


def _deployment(env: dict[str, str], name: str) -> dict[str, Any]:
    flow, dep = name.split("/")
    response = _api(env, "GET", f"/deployments/name/{flow}/{dep}")
    response.raise_for_status()
    return response.json()


def _create(env: dict[str, str], name: str, body: dict[str, Any]) -> httpx.Response:
    return _api(
        env,
        "POST",
        f"/deployments/{_deployment(env, name)['id']}/create_flow_run",
        {"state": {"type": "SCHEDULED"}, **body},
    )


def _runs_of(env: dict[str, str], name: str) -> list[dict[str, Any]]:
    response = _api(
        env,
        "POST",
        "/flow_runs/filter",
        {"deployments": {"id": {"any_": [_deployment(env, name)["id"]]}}, "limit": 100},
    )
    response.raise_for_status()
    return response.json()


def _worker_pass(env: dict[str, str], expected: int, name: str) -> list[dict[str, Any]]:
    """The runs of ``name`` once ``expected`` of them are final, after worker passes."""
    # Why this long: one pass starts every waiting run as a process of its own (7 here), and
    # on a slow 2-core machine (a sandboxed kernel, 30 Nov) one pass took more than 300 s.
    deadline = time.monotonic() + 900
    for _ in range(6):
        _ok(
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
            timeout=600,
        )
        runs = _runs_of(env, name)
        final = [
            r for r in runs if r["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
        ]
        if len(final) >= expected or time.monotonic() > deadline:
            return runs
    return _runs_of(env, name)


def test_the_dry_run_deployment_never_sends_and_partial_overrides_keep_defaults(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'dunning.db'}"
    upgrade(db_url)
    # The demo's Tuesday afternoon: this portfolio has reminders due then (the control below).
    seeded = seed_portfolio(get_engine(db_url), 30, 120, 7, dt.date(2026, 11, 24))
    assert seeded["open"] > 0
    as_of = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
    stamp = "2026-11-24T15:00:00Z"

    with run_fakes(seed=3, latency_ms=0) as fakes, local_server(tmp_path / "prefect") as env:
        env.update(fakes.env())
        env.update(
            {
                "DUNNING_DATABASE_URL": db_url,
                "DUNNING_HOME": os.environ["DUNNING_HOME"],
                "DUNNING_EMAIL_PROVIDER": "sendgrid",
                "DUNNING_SMS_PROVIDER": "twilio",
                "DUNNING_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/operator",
            }
        )
        _ok([str(BIN / "dunning"), "setup-prefect", "--json"], env)
        _ok([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], env, timeout=300)

        hourly = _deployment(env, HOURLY)
        assert hourly["parameters"] == {"dry_run": False, "concurrency": 4}
        assert [s["active"] for s in hourly["schedules"]] == [False]  # ships paused
        assert _deployment(env, DRY)["enforce_parameter_schema"] is True

        # A bad date is refused when the run is created, on either deployment.
        for name in (DRY, HOURLY):
            refused = _create(env, name, {"parameters": {"as_of": "26.11.2026"}})
            assert refused.status_code == 409, refused.text
            assert "as_of" in refused.text
        cli = _run(
            [str(BIN / "prefect"), "deployment", "run", DRY, "--param", "as_of=26.11.2026"], env
        )
        assert cli.returncode != 0 and "as_of" in cli.stdout + cli.stderr

        # Every shape a user could send to the dry-run deployment.
        _ok([str(BIN / "prefect"), "deployment", "run", DRY, "--param", f"as_of={stamp}"], env)
        _ok(
            [
                str(BIN / "prefect"),
                "deployment",
                "run",
                DRY,
                "--params",
                json.dumps({"as_of": stamp, "channels": ["email", "sms"]}),
            ],
            env,
        )
        shapes: list[dict[str, Any]] = [
            {"parameters": {"as_of": stamp, "dry_run": False}},
            {"parameters": {"params": {"as_of": stamp, "dry_run": False}}},
            {"parameters": {"as_of": stamp, "dry_run": False}, "enforce_parameter_schema": False},
            # the UI form posts every field it shows
            {
                "parameters": {
                    "as_of": stamp,
                    "channels": [],
                    "segments": [],
                    "stages": [],
                    "invoice_numbers": [],
                    "max_messages": None,
                    "policy_path": None,
                }
            },
        ]
        for body in shapes:
            response = _create(env, DRY, body)
            assert response.status_code in (201, 409), response.text
        for flag in (
            ["--param", "dry_run=false"],
            ["--params", json.dumps({"params": {"dry_run": False, "as_of": stamp}})],
        ):
            # created (then failed by the flow for the unknown parameter) or refused: never sent
            _run([str(BIN / "prefect"), "deployment", "run", DRY, *flag], env)
        created = len(_runs_of(env, DRY))
        assert created >= 5
        dry_runs = _worker_pass(env, created, DRY)
        states = sorted(r["state"]["type"] for r in dry_runs)
        assert states.count("COMPLETED") >= 3, states
        named = [(r["name"], r["state"]["type"]) for r in dry_runs]
        assert all(n.startswith("dry run ") for n, st in named if st == "COMPLETED"), named
        assert fakes.received() == [], "a dry run reached a provider"
        with get_engine(db_url).connect() as conn:
            assert conn.scalar(select(func.count(Reminder.id))) == 0  # nothing was even planned

        # The hourly deployment: overriding only as_of keeps concurrency and dry_run.
        response = _create(env, HOURLY, {"parameters": {"as_of": stamp}})
        assert response.status_code == 201, response.text
        assert response.json()["parameters"] == {"dry_run": False, "concurrency": 4, "as_of": stamp}
        (run,) = _worker_pass(env, 1, HOURLY)
        assert run["state"]["type"] == "COMPLETED", run["state"]
        assert run["name"] == f"reminders {as_of:%Y-%m-%dT%H:%MZ}"
        assert len(fakes.received()) > 0  # the control: a sending run did reach the fakes

        # Sending starts only when someone resumes the schedule, and is told what that means.
        first = _run([str(BIN / "dunning"), "schedule", "resume"], env)
        assert first.returncode == 0, first.stderr
        text = " ".join(first.stderr.split())
        assert "payment-reminders/payment-reminders: every hour on the hour" in text, text
        assert "active now" in text and "sends the reminders due" in text and "next runs:" in text
        resumed_err = _run([str(BIN / "dunning"), "schedule", "resume", "--json"], env)
        (change,) = json.loads(resumed_err.stdout)["schedules"]
        assert change["active"] is True and change["was_active"] is True
        assert len(change["next_runs"]) == 3
        assert all(t.endswith(":00:00+00:00") for t in change["next_runs"])
        assert [s["active"] for s in _deployment(env, HOURLY)["schedules"]] == [True]
        paused = json.loads(_ok([str(BIN / "dunning"), "schedule", "pause", "--json"], env))
        assert paused["schedules"][0]["active"] is False
        assert [s["active"] for s in _deployment(env, HOURLY)["schedules"]] == [False]
        assert first.stdout == ""  # the human text goes to stderr; stdout stays for --json

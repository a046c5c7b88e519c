"""A sharded reminder run on a real `prefect server start` with two real process workers:
the coordinator deployment starts one shard deployment run per shard, either worker picks them
up, a shard submitted twice at once races the others, and every reminder reaches the provider
exactly once."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from bench.common import fake_providers
from dunning.db.models import Reminder, ReminderRun
from dunning.devtools.seed import seed_portfolio
from dunning.policy import load_policy, plan
from dunning.portfolio import load_portfolio
from dunning.prefect_setup import local_server

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Tuesday 24 Nov 2026, 15:00 UTC: inside the send window of most of the seed's customers.
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
WORKERS = ("worker-a", "worker-b")
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
WAIT_S = 240.0  # upper bound for the runs to end on a loaded 2-core box; healthy: under 60 s


def _run(cmd: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _api(env: dict[str, str], method: str, path: str, body: Any = None) -> Any:
    """The API's JSON answer; a 503 is retried, as Prefect's own client does, because the
    server answers it while its SQLite database is busy with the workers' polls."""
    for attempt in range(5):
        try:
            response = httpx.request(method, env["PREFECT_API_URL"] + path, json=body, timeout=30)
        except httpx.TimeoutException:
            # A busy server on a loaded 2-core machine may not answer one read in 30 s; a
            # read is safe to repeat, a create is not.
            if method != "GET" or attempt == 4:
                raise
            time.sleep(1 + attempt)
            continue
        if response.status_code != 503 or attempt == 4:
            break
        time.sleep(1 + attempt)
    response.raise_for_status()
    return response.json() if response.content else None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The client environment of a Prefect server with every deployment of prefect.yaml."""
    with local_server(tmp_path_factory.mktemp("prefect")) as env:
        _run([str(BIN / "prefect"), "work-pool", "create", "dunning", "--type", "process"], env)
        _run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], env)
        yield env


@contextlib.contextmanager
def _workers(env: dict[str, str], logs: Path) -> Iterator[dict[str, Path]]:
    """Two process workers on the pool, their stdout in ``logs``; stopped with their runs."""
    procs, files = [], {}
    try:
        for name in WORKERS:
            files[name] = logs / f"{name}.log"
            out = files[name].open("wb")
            # --limit 2: a worker holding the coordinator has one slot left, so three runs
            # submitted at once cannot all land on one worker.
            procs.append(
                subprocess.Popen(
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
                        "--limit",
                        "2",
                    ],
                    env=env,
                    cwd=ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            out.close()
        _await_workers(env)
        yield files
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _await_workers(env: dict[str, str]) -> None:
    """Returns once both workers have registered with the pool."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = {w["name"] for w in _api(env, "POST", "/work_pools/dunning/workers/filter", {})}
        if set(WORKERS) <= found:
            return
        time.sleep(0.5)
    raise AssertionError(f"workers did not register within 90 s; found {found}")


def _start(env: dict[str, str], deployment: str, params: dict[str, Any]) -> str:
    """The id of a new flow run of ``deployment``, created as the UI's Run button does."""
    flow, name = deployment.split("/")
    dep = _api(env, "GET", f"/deployments/name/{flow}/{name}")
    run = _api(
        env,
        "POST",
        f"/deployments/{dep['id']}/create_flow_run",
        {"parameters": {"as_of": AS_OF.isoformat(), **params}, "state": {"type": "SCHEDULED"}},
    )
    return str(run["id"])


def _await_final(env: dict[str, str], ids: list[str], logs: dict[str, Path]) -> dict[str, Any]:
    """The flow runs ``ids`` once every one is in a final state."""
    deadline = time.monotonic() + WAIT_S
    while True:
        runs = {i: _api(env, "GET", f"/flow_runs/{i}") for i in ids}
        if all(r["state"]["type"] in FINAL for r in runs.values()):
            return runs
        if time.monotonic() > deadline:
            tails = {n: p.read_text(errors="replace")[-3000:] for n, p in logs.items()}
            raise AssertionError(
                f"runs not final after {WAIT_S} s: "
                f"{ {i: r['state']['type'] for i, r in runs.items()} }\n{tails}"
            )
        time.sleep(1)


def _ran_by(logs: dict[str, Path]) -> dict[str, str]:
    """Which worker ran each flow run id, from the workers' own log lines.

    Both workers may try to submit the same run; the server lets one move it to Pending and
    the other logs that it aborted, so a run belongs to the worker that submitted and did not
    abort it.
    """
    tried = re.compile(r"Worker '([^']+)' submitting flow run '([0-9a-f-]{36})'")
    aborted = re.compile(r"Aborted submission of flow run '([0-9a-f-]{36})'")
    ran: dict[str, str] = {}
    for name, path in logs.items():
        text = path.read_text(errors="replace")
        gave_up = set(aborted.findall(text))
        for worker, run_id in tried.findall(text):
            assert worker == name
            if run_id not in gave_up:
                assert ran.setdefault(run_id, worker) == worker, f"{run_id} ran on both"
    return ran


def _due(engine: Engine) -> int:
    """How many reminders one unsharded plan says are due at AS_OF."""
    lines = plan(load_portfolio(engine), AS_OF, load_policy(None))
    return int((lines["action"] == "send").sum())


def test_two_workers_run_a_sharded_run_and_each_reminder_is_sent_once(
    server: dict[str, str], db_url: str, engine: Engine, tmp_path: Path
):
    seed_portfolio(engine, 120, 400, 7, AS_OF.date())
    due = _due(engine)
    assert due > 10
    engine.dispose()

    with fake_providers(latency_ms=0.0) as fakes:
        env = {
            **server,
            **fakes.env,
            "DUNNING_DATABASE_URL": db_url,
            "DUNNING_HOME": str(tmp_path / "home"),
            "PREFECT_LOGGING_LEVEL": "INFO",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
        }
        with _workers(env, tmp_path) as logs:
            coordinator = _start(env, "payment-reminders/payment-reminders-sharded", {"shards": 2})
            # The same shard twice at once, racing each other and the coordinator's shard 0.
            twins = [
                _start(env, "payment-reminders/payment-reminders-shard", {"shards": 2, "shard": 0})
                for _ in range(2)
            ]
            # Shards on the coordinator's own deployment, which has a concurrency limit of 1:
            # refused at once instead of queueing behind their coordinator forever.
            refused = _start(
                env,
                "payment-reminders/payment-reminders",
                {"shards": 2, "shard_deployment": "payment-reminders/payment-reminders"},
            )
            top = _await_final(env, [coordinator, *twins, refused], logs)
            with engine.connect() as conn:
                shard_runs = dict(
                    conn.execute(select(ReminderRun.flow_run_id, ReminderRun.outcomes)).all()
                )
            children = [i for i in shard_runs if i not in twins]
            runs = {**top, **_await_final(env, children, logs)}
        received = fakes.received()

    assert top[refused]["state"]["type"] == "FAILED"
    assert "concurrency limit" in top[refused]["state"]["message"]
    del runs[refused]
    assert {i: r["state"]["type"] for i, r in runs.items()} == dict.fromkeys(runs, "COMPLETED")
    # Every shard ran: the coordinator's two children cover shards 0 and 1.
    assert len(children) == 2
    assert sorted(runs[i]["parameters"]["shard"] for i in children) == [0, 1]
    assert all(runs[i]["parent_task_run_id"] for i in children)  # linked as subflows
    ran = _ran_by(logs)
    assert set(runs) | {refused} == set(ran)
    assert set(ran.values()) == set(WORKERS), ran  # both workers ran flow runs

    # The provider got every due reminder exactly once, and the ledger agrees.
    keys = Counter(
        f"sendgrid:{m['reminder_id']}"
        if m["reminder_id"]
        else f"{m['provider']}:{m['to']}:{m['body']}"
        for m in received
    )
    assert {k: n for k, n in keys.items() if n > 1} == {}
    with engine.connect() as conn:
        statuses = dict(
            conn.execute(select(Reminder.status, func.count()).group_by(Reminder.status)).all()
        )
    assert statuses == {"sent": due}
    assert len(received) == due
    # The twins and the coordinator's shard 0 split shard 0's sends between them.
    sent = {i: _sent(o) for i, o in shard_runs.items()}
    assert sum(sent.values()) == due
    print(
        f"sharded run on {engine.dialect.name}: due {due}, sent by run "
        f"{ {runs[i]['name']: n for i, n in sent.items()} }, worker by run "
        f"{ {runs[i]['name'] if i in runs else 'refused': w for i, w in ran.items()} }"
    )


def _sent(outcomes: dict[str, Any]) -> int:
    """How many reminders a shard run's stored outcomes say it sent."""
    at = outcomes["columns"].index("outcome")
    return sum(row[-1] for row in outcomes["rows"] if row[at] == "sent")

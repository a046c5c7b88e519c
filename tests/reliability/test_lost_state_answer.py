"""The Prefect API's answer to a run's final state is lost: the client sends the transition
again, the server refuses it as a duplicate and answers with the stored state, which holds no
data. Calling the reminder flow must still return the run's report, and nothing is sent twice.

Between the flow (run in a subprocess) and the real Prefect test server sits a TCP proxy that
forwards every byte, except that it swallows the server's answer to the first ``set_state``
of a flow run to COMPLETED and closes that connection, as a read timeout or a dropped
connection does. CI saw this as ``MissingResult`` on a loaded SQLite Prefect server (a
set-state answer over 60 s).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prefect.settings import PREFECT_API_URL
from sqlalchemy import func, select
from typer.testing import CliRunner

from dunning.cli import _load_commands, app
from dunning.db.models import Reminder
from tests.reliability.support import DUNNING, run_env

pytestmark = pytest.mark.prefect

CASE = Path(__file__).resolve().parents[1] / "cases" / "first_contact"
AS_OF = "2026-11-03T16:00:00+00:00"


class DropFinalStateAnswer:
    """A TCP proxy to ``upstream`` (host, port) that drops the answer to the first request
    setting a flow run's state to COMPLETED; ``dropped`` counts the answers it dropped."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.dropped = 0
        self._armed = True
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            state: dict[str, Any] = {"request": b"", "drop": False}
            threading.Thread(target=self._up, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, state), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket, state: dict[str, Any]) -> None:
        try:
            while chunk := client.recv(65536):
                state["request"] += chunk
                seen = state["request"]
                if b"/flow_runs/" in seen and b"/set_state" in seen and b'"COMPLETED"' in seen:
                    with self._lock:
                        if self._armed:
                            self._armed = False
                            state["drop"] = True  # before the server can answer this request
                server.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(client, server)

    def _down(self, server: socket.socket, client: socket.socket, state: dict[str, Any]) -> None:
        try:
            while chunk := server.recv(65536):
                if state["drop"]:  # the transition is made and committed; its answer is lost
                    self.dropped += 1
                    break
                state["request"] = b""  # an answer ends the request it answers
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(client, server)


def _close(*sockets: socket.socket) -> None:
    for s in sockets:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


@pytest.fixture
def lossy_api(prefect_server: None) -> Iterator[tuple[DropFinalStateAnswer, str]]:
    """The proxy and its Prefect API URL. Only subprocesses use it: Prefect keeps process-wide
    clients (events, concurrency slots) bound to the URL they were first made with, so a flow
    run in this process would leave them pointing at a proxy that is gone."""
    api = urlsplit(str(PREFECT_API_URL.value()))
    proxy = DropFinalStateAnswer((api.hostname or "127.0.0.1", int(api.port or 80)))
    yield proxy, f"http://127.0.0.1:{proxy.port}{api.path}"
    proxy.close()


def _import_case() -> None:
    _load_commands()
    for kind in ("customers", "invoices", "payments"):
        if (CASE / f"{kind}.csv").exists():
            result = CliRunner().invoke(app, ["import", kind, str(CASE / f"{kind}.csv")])
            assert result.exit_code == 0, result.output


def _server_state(flow_run_id: str) -> dict[str, Any]:
    api = str(PREFECT_API_URL.value()).rstrip("/")
    return httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=30).json()["state"]  # type: ignore[no-any-return]


def _run_behind(api_url: str, db_url: str, tmp_path: Path, *cmd: str) -> dict[str, Any]:
    """The last stdout line (JSON) of ``cmd`` run with the Prefect API at ``api_url``."""
    done = subprocess.run(
        cmd,
        env=run_env(db_url, {}, tmp_path / "home", PREFECT_API_URL=api_url),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_dunning_run_reports_when_the_completed_states_answer_is_lost(
    lossy_api: tuple[DropFinalStateAnswer, str], engine: Any, db_url: str, tmp_path: Path
) -> None:
    proxy, api_url = lossy_api
    _import_case()
    report = _run_behind(api_url, db_url, tmp_path, DUNNING, "run", "--as-of", AS_OF, "--json")

    assert proxy.dropped == 1  # the server made the transition; the client never heard
    assert report["counts"]["sent"] == 4 and report["counts"]["failed"] == 0
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Reminder)) == 4  # none twice
    stored = _server_state(report["flow_run_id"])
    assert stored["type"] == "COMPLETED"
    assert stored["message"].startswith("sent 4, failed 0, ")


DRY_RUN = """
import json
from dunning.flows.dry_run import reminders_dry_run
state = reminders_dry_run(as_of={as_of!r}, return_state=True)
report = state.result()
print(json.dumps({{"type": state.type.value, "message": state.message,
                   "summary": report.summary_line(), "counts": report.counts()}}))
"""


def test_a_dry_run_called_for_its_state_keeps_its_report_when_the_answer_is_lost(
    lossy_api: tuple[DropFinalStateAnswer, str], engine: Any, db_url: str, tmp_path: Path
) -> None:
    proxy, api_url = lossy_api
    _import_case()
    got = _run_behind(api_url, db_url, tmp_path, sys.executable, "-c", DRY_RUN.format(as_of=AS_OF))

    assert proxy.dropped == 1
    assert got["type"] == "COMPLETED" and got["counts"]["planned"] == 4
    assert got["message"] == got["summary"]
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Reminder)) == 0

"""Helpers for tests that drive a real `prefect server start`: its CLI and its REST API."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def run_cli(cmd: list[str], env: dict[str, str], cwd: Path = ROOT, timeout: float = 180) -> str:
    """The stdout of ``cmd``; fails the test with its output when it exits non-zero."""
    done = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def api(env: dict[str, str], method: str, path: str, body: Any = None) -> Any:
    """The API's JSON answer; a 503 is retried, as Prefect's own client does, because the
    server answers it while its SQLite database is busy with the workers' polls."""
    for attempt in range(5):
        response = httpx.request(method, env["PREFECT_API_URL"] + path, json=body, timeout=30)
        if response.status_code != 503 or attempt == 4:
            break
        time.sleep(1 + attempt)
    response.raise_for_status()
    return response.json() if response.content else None

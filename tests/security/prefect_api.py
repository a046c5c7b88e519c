"""Reading a flow run's artifacts and logs from the shared Prefect test server over its REST API.

Plain HTTP on purpose: the API's filter bodies are stable, and the test asserts on what the
server stores, as the UI would show it.
"""

from __future__ import annotations

from typing import Any

import httpx
from prefect.settings import PREFECT_API_URL


def _post(path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    url = str(PREFECT_API_URL.value()).rstrip("/") + path
    response = httpx.post(url, json=body, timeout=30)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()
    return result


def read_artifacts(flow_run_id: str) -> list[dict[str, Any]]:
    """Every artifact of a flow run (and of its task runs), as the API returns them."""
    return _post(
        "/artifacts/filter",
        {
            "flow_runs": {"id": {"any_": [flow_run_id]}},
            "limit": 200,
            "offset": 0,
            "sort": "CREATED_DESC",
        },
    )


def read_logs(flow_run_id: str) -> list[dict[str, Any]]:
    """Every log line the server stored for a flow run, oldest first."""
    logs: list[dict[str, Any]] = []
    while True:
        page = _post(
            "/logs/filter",
            {
                "logs": {"flow_run_id": {"any_": [flow_run_id]}},
                "limit": 200,
                "offset": len(logs),
                "sort": "TIMESTAMP_ASC",
            },
        )
        logs += page
        if len(page) < 200:
            return logs

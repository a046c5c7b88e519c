"""The reminder flow's weekly KPI artifact and batch failure-rate event, on the test server."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from prefect import flow

from dunning.config import reload_settings
from dunning.tasks.report import emit_batch
from tests.factories import add_customer, add_invoice
from tests.test_kpis import AS_OF, _sent

pytestmark = pytest.mark.prefect


def _api(path: str, body: dict[str, Any]) -> Any:
    from prefect.settings import PREFECT_API_URL

    response = httpx.post(f"{PREFECT_API_URL.value()}{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def _kpi_artifacts(run_id: str) -> list[dict[str, Any]]:
    return _api(
        "/artifacts/filter",
        {
            "artifacts": {
                "flow_run_id": {"any_": [run_id]},
                "key": {"any_": ["reminder-weekly-kpis"]},
            },
            "sort": "CREATED_DESC",
            "limit": 5,
            "offset": 0,
        },
    )


def test_the_weekly_kpi_table_appears_once_tracking_data_exists(prefect_server, engine):
    from dunning.flows.payment_reminders import payment_reminders

    add_customer(engine)
    inv = add_invoice(engine, "INV-TRACKED")
    before = payment_reminders(as_of=AS_OF, dry_run=True)
    assert _kpi_artifacts(str(before.flow_run_id)) == []

    _sent(engine, inv, "due", "reliable", 2, delivered_at=0.01)
    # Paid within 7 days counts reminders whose 7 days have elapsed: this one, sent 8 days ago.
    _sent(engine, add_invoice(engine, "INV-OLDER"), "due", "reliable", 8, paid_at=1)
    after = payment_reminders(as_of=AS_OF, dry_run=True)
    [artifact] = _kpi_artifacts(str(after.flow_run_id))
    data = artifact["data"]
    table = json.loads(data) if isinstance(data, str) else data
    rows = {r["segment"]: r for r in table}
    assert rows["reliable"]["delivery_rate"] == "100.0%"
    assert rows["reliable"]["paid_7d_rate"] == "100.0%" and rows["reliable"]["paid_7d_n"] == 1


@flow
def _two_batches(run_id: str) -> None:
    emit_batch(run_id, {"batch": 1, "batches": 2, "sent": 9, "failed": 1})
    emit_batch(run_id, {"batch": 2, "batches": 2, "sent": 5, "failed": 5})


def _events(resource_id: str) -> list[dict[str, Any]]:
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    found = _api(
        "/events/filter",
        {"filter": {"occurred": {"since": since}, "resource": {"id": [resource_id]}}, "limit": 50},
    )
    return found["events"]


def test_a_batch_over_the_failure_threshold_emits_an_alert_event(
    prefect_server, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DUNNING_ALERT_FAILURE_RATE", "0.3")
    reload_settings()
    run_id = uuid.uuid4().hex
    _two_batches(run_id)
    # Events reach the server asynchronously: poll until both batches are recorded.
    events: list[dict[str, Any]] = []
    for _ in range(120):
        events = _events(f"dunning.run.{run_id}")
        if len([e for e in events if e["event"] == "dunning.batch.completed"]) == 2:
            break
        time.sleep(0.5)
    names = sorted(e["event"] for e in events)
    assert names == [
        "dunning.batch.completed",
        "dunning.batch.completed",
        "dunning.batch.failure-rate-exceeded",
    ]
    alert = next(e for e in events if e["event"] == "dunning.batch.failure-rate-exceeded")
    assert alert["payload"]["batch"] == 2
    assert alert["payload"]["failure_rate"] == 0.5 and alert["payload"]["threshold"] == 0.3

"""The operator-action deployment on a real Prefect server: its form (the parameter schema the
server enforces) starts a flow run, which a worker-style process executes
(``python -m prefect.engine``, as a process worker does); the run changes the next plan and
leaves an audit row naming the flow run. A refused action fails the run and changes nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.exceptions import PrefectHTTPStatusError
from sqlalchemy import Engine, select

from dunning.db import session_scope
from dunning.db.models import OperatorAction
from dunning.operations.actions import ACTIONS
from tests.factories import add_customer, add_invoice
from tests.operate_support import line, next_plan

pytestmark = pytest.mark.prefect
ROOT = Path(__file__).resolve().parents[1]


async def _schema(deployment_id: Any) -> dict[str, Any]:
    async with get_client() as client:
        deployment = await client.read_deployment(deployment_id)
        return dict(deployment.parameter_openapi_schema or {})


async def _start(deployment_id: Any, form: dict[str, Any]) -> Any:
    async with get_client() as client:
        return (await client.create_flow_run_from_deployment(deployment_id, parameters=form)).id


async def _state(run_id: Any) -> tuple[str, str]:
    async with get_client() as client:
        state = (await client.read_flow_run(run_id)).state
        assert state is not None
        return state.type.value, str(state.message or "")


def _execute(run_id: Any, db_url: str) -> None:
    """Run the flow run the way a process worker does, in a separate process (bounded)."""
    from prefect.settings import PREFECT_API_URL

    env = {
        **os.environ,
        "PREFECT__FLOW_RUN_ID": str(run_id),
        "DUNNING_DATABASE_URL": db_url,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "-m", "prefect.engine"],
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
        capture_output=True,
    )


def _audit(engine: Engine) -> list[OperatorAction]:
    with session_scope(engine) as s:
        rows = list(s.scalars(select(OperatorAction).order_by(OperatorAction.id)))
        s.expunge_all()
        return rows


def test_the_form_runs_each_action_changes_the_plan_and_is_audited(
    prefect_server: None, engine: Engine, db_url: str
) -> None:
    from dunning.flows.operator_action import operator_action

    add_customer(engine, "C1")
    add_invoice(engine, "INV-1", "C1", due_on=dt.date(2026, 11, 10))
    add_invoice(engine, "INV-PAID", "C1", status="paid")
    now = dt.datetime.now(dt.UTC)
    assert line(next_plan(engine, now), "INV-1", "email")[1] != "invoice_paused"

    deployment_id = operator_action.to_deployment(name="operator-action").apply()
    schema = asyncio.run(_schema(deployment_id))
    assert schema["required"] == ["action"]
    assert tuple(schema["definitions"]["ActionName"]["enum"]) == ACTIONS
    assert {"invoice", "customer", "record_id", "date", "amount", "reason"} <= set(
        schema["properties"]
    )
    with pytest.raises(PrefectHTTPStatusError) as bad:
        asyncio.run(_start(deployment_id, {"action": "drop_everything", "invoice": "INV-1"}))
    assert bad.value.response.status_code == 409

    until = (now + dt.timedelta(days=20)).date()
    run_id = asyncio.run(
        _start(
            deployment_id,
            {
                "action": "invoice_pause",
                "invoice": "INV-1",
                "date": until.isoformat(),
                "reason": "customer asked for time",
            },
        )
    )
    _execute(run_id, db_url)
    assert asyncio.run(_state(run_id))[0] == "COMPLETED"
    assert line(next_plan(engine, now), "INV-1", "email") == ("skip", "invoice_paused")
    (row,) = _audit(engine)
    assert row.flow_run_id == str(run_id) and row.actor.startswith("prefect flow run ")
    assert (row.action, row.reason, row.after["paused_until"]) == (
        "invoice_pause",
        "customer asked for time",
        until.isoformat(),
    )

    # The other plan-changing actions through the same form, one flow run each.
    add_customer(engine, "C2")
    for number, customer in (("INV-2", "C1"), ("INV-3", "C1"), ("INV-4", "C1"), ("INV-5", "C2")):
        add_invoice(engine, number, customer, due_on=dt.date(2026, 11, 10))
    for form, number, reason in (
        ({"action": "invoice_dispute", "invoice": "INV-2"}, "INV-2", "disputed"),
        (
            {
                "action": "invoice_promise",
                "invoice": "INV-3",
                "date": until.isoformat(),
                "amount": "40",
            },
            "INV-3",
            "promise_to_pay",
        ),
        (
            {"action": "customer_pause", "customer": "C2", "date": until.isoformat()},
            "INV-5",
            "customer_paused",
        ),
    ):
        started = asyncio.run(_start(deployment_id, form))
        _execute(started, db_url)
        assert asyncio.run(_state(started))[0] == "COMPLETED", form
        assert line(next_plan(engine, now), number, "email") == ("skip", reason), form
    paid = asyncio.run(
        _start(deployment_id, {"action": "invoice_paid", "invoice": "INV-4", "amount": "100.00"})
    )
    _execute(paid, db_url)
    assert asyncio.run(_state(paid))[0] == "COMPLETED"
    assert "INV-4" not in set(next_plan(engine, now)["invoice_number"])  # paid in full
    audit = _audit(engine)
    assert [a.action for a in audit] == [
        "invoice_pause",
        "invoice_dispute",
        "invoice_promise",
        "customer_pause",
        "invoice_paid",
    ]
    assert all(a.flow_run_id and a.actor.startswith("prefect flow run ") for a in audit)

    refused = asyncio.run(
        _start(
            deployment_id,
            {"action": "invoice_pause", "invoice": "INV-PAID", "date": until.isoformat()},
        )
    )
    _execute(refused, db_url)
    state, message = asyncio.run(_state(refused))
    assert state == "FAILED" and "INV-PAID is paid" in message
    assert len(_audit(engine)) == 5

"""What a reminder run shows in Prefect: run and task-run names, tags, log lines, the final
state's message, and the artifacts (dry runs under their own keys, the failures artifact)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pandas as pd
import pytest

from dunning.report import RunReport
from tests.factories import add_customer, add_invoice

pytestmark = pytest.mark.prefect

# Tuesday 24 Nov 2026, 15:00 UTC = 10:00 in New York: inside the default send window.
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


def _portfolio(engine) -> None:
    add_customer(engine, "C1")
    add_customer(engine, "C2", email="bo@example.org", phone=None, sms_consent=False)
    add_invoice(engine, "INV-DUE", "C1", due_on=dt.date(2026, 11, 24))
    add_invoice(engine, "INV-LATE", "C1", due_on=dt.date(2026, 11, 10))
    add_invoice(engine, "INV-C2", "C2", due_on=dt.date(2026, 11, 17))


def _flow_run(flow_run_id: Any) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def _task_runs(flow_run_id: Any) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            limit=200,
            offset=0,
        )


def _logs(flow_run_id: Any) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)  # logs are shipped in the background; send them now
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
            limit=200,
            offset=0,
        )
    return [log.message for log in logs]


def _artifacts(flow_run_id: Any) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, FlowRunFilter, TaskRunFilter
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(),
            flow_run_filter=FlowRunFilter(),
            task_run_filter=TaskRunFilter(),
            sort=ArtifactSort.CREATED_DESC,
            limit=200,
            offset=0,
        )
    return {a.key: a for a in arts if str(a.flow_run_id) == str(flow_run_id) and a.key}


def test_a_run_names_its_runs_tags_its_batches_logs_counts_and_ends_with_them(
    prefect_server, engine
):
    from dunning.flows.payment_reminders import payment_reminders

    _portfolio(engine)
    state = payment_reminders(as_of=AS_OF, return_state=True)
    report = state.result()
    assert isinstance(report, RunReport)  # the caller still gets the report itself
    sent = report.counts()["sent"]
    assert sent >= 3
    assert state.is_completed()
    assert state.message == report.summary_line()
    assert state.message.startswith(f"sent {sent}, failed 0, skipped ")

    run = _flow_run(state.state_details.flow_run_id)
    assert run.name == "reminders 2026-11-24T15:00Z"
    assert run.state.message == report.summary_line()

    batches = [t for t in _task_runs(run.id) if " batch " in t.name]
    assert batches, [t.name for t in _task_runs(run.id)]
    pattern = re.compile(r"^deliver (email|sms|email\+sms) batch (\d+)/(\d+) \((\d+)\)$")
    numbers = set()
    for task_run in batches:
        match = pattern.match(task_run.name)
        assert match, task_run.name
        numbers.add(int(match.group(2)))
        assert int(match.group(3)) == len(batches)
        for channel in match.group(1).split("+"):
            assert f"channel:{channel}" in task_run.tags
        assert any(t.startswith("stage:") for t in task_run.tags), task_run.tags
    assert numbers == set(range(1, len(batches) + 1))

    logs = _logs(run.id)
    per_batch = [
        m
        for m in logs
        if re.match(
            r"^(email|sms|email\+sms) batch \d+/\d+ \(\d+\): "
            r"sent \d+, failed \d+, skipped \d+",
            m,
        )
    ]
    assert len(per_batch) == len(batches), logs
    assert f"run totals as of {AS_OF.isoformat()}: {report.summary_line()}" in logs

    arts = _artifacts(run.id)
    assert {"reminder-run-summary", "reminder-run-failures"} <= set(arts)
    failures = str(arts["reminder-run-failures"].data)
    assert arts["reminder-run-failures"].type == "markdown"
    assert "No failures" in failures and "|" not in failures


def test_a_dry_run_publishes_under_its_own_keys_and_says_would_send(prefect_server, engine):
    from dunning.flows.dry_run import reminders_dry_run

    _portfolio(engine)
    state = reminders_dry_run(as_of=AS_OF, return_state=True)
    report = state.result()
    planned = report.counts()["planned"]
    assert planned >= 3 and report.counts()["sent"] == 0
    assert state.message == f"would send {planned}, skipped 0, deferred 0" or (
        state.message.startswith(f"would send {planned}, ")
    )
    run = _flow_run(state.state_details.flow_run_id)
    assert run.name == "dry run 2026-11-24T15:00Z"

    arts = _artifacts(run.id)
    assert "reminder-dry-run-summary" in arts
    assert not {"reminder-run-summary", "reminder-run-failures"} & set(arts)
    summary = str(arts["reminder-dry-run-summary"].data)
    assert "| would send | skipped | deferred |" in summary
    assert f"| {planned} |" in summary and "nothing was sent" in summary
    assert "| sent |" not in summary


def _line(number: str, outcome: str, **kw: Any) -> dict[str, Any]:
    return {
        "invoice_number": number,
        "customer_id": "C",
        "segment": "reliable",
        "stage": "due",
        "channel": kw.get("channel", "email"),
        "action": "send",
        "outcome": outcome,
        "reason": kw.get("reason", ""),
        "error_code": kw.get("error_code"),
        "not_before": None,
    }


def test_the_failures_artifact_lists_failed_pending_and_unknown_or_says_none():
    frame = pd.DataFrame(
        [
            _line("I1", "sent"),
            _line("I2", "failed", error_code="21211", reason="invalid | number"),
            _line("I3", "pending"),
            _line("I4", "unknown", channel="sms"),
            _line("I5", "skipped", reason="paid"),
        ]
    )
    report = RunReport(AS_OF, False, "r1", frame, stopped="provider refused our credentials")
    text = report.failures_markdown()
    assert "failed 1, unknown 1, pending 1" in text
    assert "**Delivery stopped early:** provider refused our credentials" in text
    assert "| I2 | due | email | failed | 21211 | invalid \\| number |" in text
    assert "| I3 | due | email | pending |  | left planned for the next run |" in text
    assert "| I4 | due | sms | unknown |" in text
    assert "I1" not in text and "I5" not in text
    # what a shard stores for its coordinator keeps the listed invoices
    back = RunReport.from_compact(report.to_compact())
    assert back.failures() == report.failures()

    clean = RunReport(AS_OF, False, "r2", pd.DataFrame([_line("I1", "sent")]))
    text = clean.failures_markdown()
    assert "No failures" in text and "|" not in text

"""Report: publish the run's summary, failures and events to Prefect; store the counts."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from dunning import runs
from dunning.config import get_settings
from dunning.db import get_engine
from dunning.db.models import utcnow
from dunning.escalation import EVENT, record_escalations
from dunning.kpis import (
    failure_rate,
    failure_rate_exceeded,
    kpi_records,
    weekly_kpis,
)
from dunning.report import RunReport


def emit(event: str, run_id: str, payload: dict[str, Any]) -> None:
    """Emit a dunning event about run ``run_id`` (no personal data in payloads)."""
    emit_event(
        event=event,
        resource={
            "prefect.resource.id": f"dunning.run.{run_id}",
            "prefect.resource.name": "dunning",
        },
        payload=payload,
    )


@task(
    name="raise-escalations",
    description="Hand invoices whose reminder ladder is exhausted to a person (once each).",
    cache_policy=NO_CACHE,
)
def raise_escalations(lines: Any, run_id: str, as_of: Any) -> int:
    """How many invoices this run newly escalated; emits dunning.invoice.escalated for each."""
    escalations = record_escalations(get_engine(), lines, at=utcnow())
    for esc in escalations:
        emit_event(
            event=EVENT,
            resource={
                "prefect.resource.id": f"dunning.invoice.{esc.invoice_number}",
                "prefect.resource.name": esc.invoice_number,
            },
            related=[
                {"prefect.resource.id": f"dunning.run.{run_id}", "prefect.resource.role": "run"},
            ],
            payload={**esc.payload(), "as_of": str(as_of)},
        )
    return len(escalations)


@task(
    name="publish-report",
    description="Create the run's artifacts and events.",
    # Side effects every time: never served from a cache, and no hashing of the inputs.
    cache_policy=NO_CACHE,
)
def publish_report(report: RunReport, run_row_id: int | None) -> dict[str, Any]:
    """The run summary as JSON, after publishing artifacts and storing the counts."""
    summary = report.to_json()
    # Dry runs under keys of their own, so the latest "reminder-run-*" is always a real run.
    prefix = "reminder-dry-run" if report.dry_run else "reminder-run"
    create_markdown_artifact(
        key=f"{prefix}-summary",
        markdown=report.to_markdown(),
        description=(
            "What a run now would send, skip and defer, by segment, stage and channel (a dry "
            "run: nothing was sent)."
            if report.dry_run
            else "Reminders sent, failed, skipped and deferred by segment, stage and channel."
        ),
    )
    if not report.dry_run:
        create_markdown_artifact(
            key=f"{prefix}-failures",
            markdown=report.failures_markdown(),
            description="Reminders failed, left pending for the next run, or of unknown fate "
            "(no personal data).",
        )
    if run_row_id is not None and not report.dry_run:
        runs.finish_run(get_engine(), run_row_id, summary["counts"])
    emit(
        "dunning.run.completed",
        report.flow_run_id or "local",
        {
            "counts": summary["counts"],
            "dry_run": report.dry_run,
            "stopped": report.stopped,
        },
    )
    kpis = weekly_kpis(get_engine(), report.as_of)
    if kpis is not None:
        create_table_artifact(
            key="reminder-weekly-kpis",
            table=kpi_records(kpis),
            description="Reminders sent in the 7 days up to this run: delivery rate, bounce "
            "rate and paid within 7 days after the reminder, by segment.",
        )
    return summary


def emit_batch(run_id: str, counts: dict[str, int]) -> None:
    """Emit the batch's counts, plus an alert event when its failure rate passes the threshold."""
    emit("dunning.batch.completed", run_id, counts)
    threshold = get_settings().alerts.failure_rate
    if failure_rate_exceeded(counts["sent"], counts["failed"], threshold):
        emit(
            "dunning.batch.failure-rate-exceeded",
            run_id,
            {
                **counts,
                "failure_rate": round(failure_rate(counts["sent"], counts["failed"]), 4),
                "threshold": threshold,
            },
        )

"""The outbound-events flow: deliver the outbox to subscribers (docs/outbound.md)."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from dunning.config import get_settings
from dunning.db import get_engine
from dunning.outbound.delivery import DeliveryReport, deliver_due
from dunning.timeouts import flow_timeout


@task(name="deliver-outbound-events")
def deliver_outbound_events(limit: int | None = None) -> dict[str, object]:
    """Fan out new outbox events and attempt every due delivery once; publishes the
    ``outbound-events`` artifact and returns the counts (queued, delivered, retry, dead)
    with the new dead letters (URLs masked, no secrets)."""
    report = deliver_due(get_engine(), get_settings().outbound, limit=limit)
    get_run_logger().info(
        "outbound events: %s", {k: v for k, v in report.as_dict().items() if k != "dead_letters"}
    )
    if any(report.counts.values()):
        create_markdown_artifact(
            key="outbound-events",
            markdown=_markdown(report),
            description="Outbound event deliveries and dead letters",
        )
    return report.as_dict()


def _markdown(report: DeliveryReport) -> str:
    counts = report.as_dict()
    lines = [
        "## Outbound events",
        "",
        "| queued | delivered | retry later | dead letter |",
        "|---|---|---|---|",
        f"| {counts['queued']} | {counts['delivered']} | {counts['retry']} | {counts['dead']} |",
    ]
    if report.dead:
        lines += [
            "",
            "### Dead letters (re-queue with `dunning subscribers replay --since`)",
            "",
            "| subscriber | URL | event | type | attempts | last error |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {d['subscriber_id']} | {d['url']} | {d['event_id']} | {d['type']} | "
            f"{d['attempts']} | {d['error']} |"
            for d in report.dead
        ]
    return "\n".join(lines) + "\n"


@flow(name="outbound-events", log_prints=False, timeout_seconds=flow_timeout("outbound_events"))
def outbound_events(limit: int | None = None) -> dict[str, object]:
    """Deliver due outbound events (at most ``limit`` deliveries; default all due)."""
    return deliver_outbound_events(limit)

"""Tracking tasks: thin Prefect shells over dunning.tracking (apply, poll, metrics, publish)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from dunning.channels.twilio_config import twilio_config
from dunning.config import get_settings
from dunning.db import get_engine
from dunning.tracking import TrackingSummary, apply_inbox
from dunning.tracking.apply import retry_policy
from dunning.tracking.metrics import compute_metrics, to_records
from dunning.tracking.poll import poll_twilio, twilio_client
from dunning.tracking.summary import summary_markdown


@task(name="apply-inbox", description="Apply pending webhook events to the ledger.")
def apply_inbox_task(limit: int | None = None) -> dict[str, int]:
    """Counts by kind of what the pending inbox rows changed (rows in error whose retry time
    has come are applied again, counted as ``retried``)."""
    settings = get_settings().webhooks
    summary = apply_inbox(
        get_engine(),
        limit=limit,
        reply_pause_days=settings.reply_pause_days,
        retry=retry_policy(settings),
    )
    return summary.as_dict()


@task(
    name="poll-twilio",
    description="Fetch SMS without a final status from Twilio.",
    retries=2,
    retry_delay_seconds=[10, 60],
)
def poll_twilio_task(age_minutes: int | None = None) -> dict[str, int]:
    """Counts by kind of what polling Twilio changed (``poll_skipped`` without credentials)."""
    settings = get_settings().webhooks
    config = twilio_config()  # the same account sending uses (block, DUNNING_*, TWILIO_*)
    if config is None:
        # Email-only operators run the same flow; no Twilio account is not a failure.
        get_run_logger().info("Twilio polling skipped: no Twilio account is configured")
        return {"poll_skipped": 1}
    age = dt.timedelta(
        minutes=settings.twilio_poll_age_minutes if age_minutes is None else age_minutes
    )
    return poll_twilio(get_engine(), twilio_client(config), age).as_dict()


@task(name="compute-metrics", description="Delivery and recovery rates by stage and channel.")
def compute_metrics_task(by: list[str]) -> list[dict[str, Any]]:
    """The metrics table as JSON-ready rows."""
    return to_records(compute_metrics(get_engine(), by=by))


@task(name="publish-tracking", description="One summary event and a markdown artifact.")
def publish_tracking(
    counts: dict[str, int], metrics: list[dict[str, Any]], flow_run_id: str | None
) -> None:
    """Nothing; emits one ``dunning.tracking.completed`` event and the run's artifact."""
    emit_event(
        event="dunning.tracking.completed",
        resource={
            "prefect.resource.id": f"dunning.tracking.{flow_run_id or 'local'}",
            "prefect.resource.name": "dunning",
        },
        payload={"counts": counts},
    )
    create_markdown_artifact(
        key="tracking-run-summary",
        markdown=summary_markdown(get_engine(), counts, metrics),
        description="Inbox events applied, opt-outs, replies, payments; delivery metrics by "
        "stage and channel and by provider; money collected after reminders and DSO.",
    )


def merge(*parts: dict[str, int]) -> dict[str, int]:
    """The counts of all ``parts`` added up."""
    total = TrackingSummary()
    for part in parts:
        total.counts.update(part)
    return total.as_dict()

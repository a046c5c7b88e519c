"""The retention flow: drop message bodies and raw webhook payloads past their retention."""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from dunning.config import get_settings
from dunning.db import get_engine
from dunning.db.models import utcnow
from dunning.privacy import RetentionCounts, apply_retention
from dunning.timeouts import flow_timeout


@task(name="apply-retention", retries=2, retry_delay_seconds=30)
def apply_retention_task(now: dt.datetime) -> RetentionCounts:
    """The counts of bodies and payloads dropped as of ``now``."""
    engine = get_engine(get_settings().resolved_database_url)
    return apply_retention(engine, now)


@flow(name="retention", log_prints=False, timeout_seconds=flow_timeout("retention"))
def retention(now: dt.datetime | None = None) -> dict[str, int]:
    """The counts of personal text removed by the retention setting in force."""
    as_of = now or utcnow()
    settings = get_settings().privacy
    counts = apply_retention_task(as_of)
    get_run_logger().info("retention as of %s: %s", as_of.isoformat(), counts.as_dict())
    create_markdown_artifact(
        key="retention-summary",
        markdown=(
            f"## Retention as of {as_of:%Y-%m-%d %H:%M} UTC\n\n"
            f"| kept for | removed | rows |\n|---|---|---|\n"
            f"| {settings.retention_body_days} days | reminder subjects/bodies | "
            f"{counts.reminder_bodies} |\n"
            f"| {settings.retention_body_days} days | inbound SMS bodies | "
            f"{counts.inbound_bodies} |\n"
            f"| {settings.retention_payload_days} days | applied webhook payloads | "
            f"{counts.webhook_payloads} |\n"
        ),
        description="Personal text removed by the retention policy",
    )
    return counts.as_dict()

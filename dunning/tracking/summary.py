"""The tracking-run-summary artifact: what a track-responses run changed, and the metrics."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from dunning.tracking.metrics import compute_metrics, percent, to_records
from dunning.tracking.metrics import to_markdown as metrics_markdown
from dunning.tracking.recovery import dso, money_markdown, money_report


def provider_markdown(table: pd.DataFrame) -> str:
    """Sends per provider with the delivery side's rates ("n/a" where a provider never reports
    delivery: the outbox and SMTP)."""
    lines = ["| provider | sent | delivered % | bounced % |", "|---|---:|---:|---:|"]
    for r in to_records(table):
        lines.append(
            f"| {r['provider']} | {r['sent']} | {percent(r['delivery_rate'])} | "
            f"{percent(r['bounce_rate'])} |"
        )
    return "\n".join(lines)


def summary_markdown(
    engine: Engine,
    counts: dict[str, int],
    metrics: list[dict[str, Any]],
    as_of: dt.datetime | None = None,
) -> str:
    """Markdown: changes by kind; stage x channel (sent, delivered %, opened %, bounced %,
    paid 7d % with n); sends by provider; money by stage and DSO per currency."""
    changes = "\n".join(f"| {k} | {v} |" for k, v in sorted(counts.items())) or "| - | 0 |"
    parts = ["## What changed", "", "| kind | count |", "|---|---:|", changes, ""]
    if not metrics:
        return "\n".join([*parts, "No reminders sent yet."])
    parts += [
        "## Reminders by stage and channel",
        "",
        metrics_markdown(pd.DataFrame(metrics)),
        "",
        "Delivered, opened and bounced % leave out the outbox and SMTP (no delivery "
        "reports); paid 7d % counts reminders sent at least 7 days ago (n).",
        "",
        "## By provider",
        "",
        provider_markdown(compute_metrics(engine, ["provider"], as_of=as_of)),
        "",
        "## Money (per currency)",
        "",
        money_markdown(money_report(engine, as_of, ["stage"]), dso(engine, as_of)),
    ]
    return "\n".join(parts)

"""The week's KPIs per segment and the alert thresholds the reminder flow checks.

The KPI arithmetic lives in :mod:`dunning.tracking.metrics`; this module picks the week, the
columns the operator reads in the Prefect UI, and decides whether tracking data exists yet
(before the first ``track-responses`` run every rate would read 0 and mislead).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from dunning.alerts import AlertSettings  # noqa: F401  (the failure-rate threshold's home)
from dunning.tracking.metrics import load_sent, reminder_flags, summarise, to_records

#: Columns of the weekly KPI table, in the order shown in the UI.
KPI_COLUMNS = ["segment", "sent", "delivered", "bounced", "paid_7d", "delivery_rate",
               "bounce_rate", "paid_7d_rate"]
#: Per-reminder facts only the tracking side writes; one of them proves tracking has run.
_TRACKED = ["delivered", "bounced", "opened", "clicked", "replied", "paid_7d"]


def failure_rate(sent: int, failed: int) -> float:
    """The share of failed messages among those the provider answered (0.0 when none)."""
    answered = sent + failed
    return failed / answered if answered else 0.0


def failure_rate_exceeded(sent: int, failed: int, threshold: float) -> bool:
    """Whether a batch's failure rate is strictly above ``threshold``."""
    return failure_rate(sent, failed) > threshold


def week_window(as_of: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The 7 days ending at ``as_of`` (tz-aware UTC), as (since, until)."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    until = as_of.astimezone(dt.UTC)
    return until - dt.timedelta(days=7), until


def kpi_table(sent: pd.DataFrame) -> pd.DataFrame | None:
    """Delivery rate, bounce rate and paid-within-7-days rate per segment; None before tracking.

    ``sent`` is one row per sent reminder as :func:`dunning.tracking.metrics.load_sent` gives.
    The rates share the number sent as denominator; a total row "all" comes last.
    """
    if sent.empty:
        return None
    flags = reminder_flags(sent)
    if not flags[_TRACKED].to_numpy().any():
        return None
    by_segment = summarise(flags, ["segment"])
    total = summarise(flags).rename(columns={"scope": "segment"})
    table = pd.concat([by_segment, total], ignore_index=True)
    return table[KPI_COLUMNS]


def weekly_kpis(engine: Engine, as_of: dt.datetime) -> pd.DataFrame | None:
    """The KPI table of reminders sent in the 7 days up to ``as_of``; None before tracking."""
    since, until = week_window(as_of)
    sent = load_sent(engine, since)
    sent = sent[sent["sent_at"] <= pd.Timestamp(until)]
    return kpi_table(sent)


def kpi_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """``table`` as rows for a Prefect table artifact (rates as percentages, '-' for none)."""
    rows = []
    for rec in to_records(table):
        row: dict[str, Any] = {}
        for key, value in rec.items():
            if key.endswith("_rate"):
                row[key] = "-" if value is None else f"{100 * float(value):.1f}%"
            else:
                row[key] = value
        rows.append(row)
    return rows

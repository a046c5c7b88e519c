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

from dunning.tracking.metrics import load_sent, percent, reminder_flags, summarise, to_records

#: Columns of the weekly KPI table, in the order shown in the UI.
KPI_COLUMNS = [
    "segment",
    "sent",
    "delivered",
    "bounced",
    "delivery_rate",
    "bounce_rate",
    "paid_7d",
    "paid_7d_n",
    "paid_7d_rate",
]
#: Per-reminder facts only the tracking side writes; one of them proves tracking has run.
_TRACKED = ["delivered", "bounced", "opened", "clicked", "replied"]


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


def kpi_table(sent: pd.DataFrame, as_of: dt.datetime) -> pd.DataFrame | None:
    """Delivery rate, bounce rate and paid-within-7-days rate per segment; None before tracking.

    ``sent`` is one row per sent reminder as :func:`dunning.tracking.metrics.load_sent` gives,
    covering the 14 days up to ``as_of``. Sent, delivered, bounced and their rates are over the
    reminders of the last 7 days; paid within 7 days is over the reminders whose 7 days have
    elapsed (sent 7 to 14 days before ``as_of``), with their number ``paid_7d_n`` (the rate is
    None when there are none). A total row "all" comes last.
    """
    if sent.empty:
        return None
    flags = reminder_flags(sent, as_of)
    if not (flags[_TRACKED].to_numpy().any() or flags["paid_at"].notna().any()):
        return None
    week = flags[flags["sent_at"] > pd.Timestamp(week_window(as_of)[0])]
    paid = ["paid_7d", "paid_7d_n", "paid_7d_rate"]
    parts = []
    for by, frame in ((["segment"], flags), ([], flags)):
        delivery = summarise(week, by).drop(columns=paid)
        table = summarise(frame, by)[[*(by or ["scope"]), *paid]]
        parts.append(table.merge(delivery, on=by or ["scope"], how="left"))
    table = pd.concat([parts[0], parts[1].rename(columns={"scope": "segment"})], ignore_index=True)
    for column in ("sent", "delivered", "bounced"):
        table[column] = table[column].fillna(0).astype(int)
    return table[KPI_COLUMNS]


def weekly_kpis(engine: Engine, as_of: dt.datetime) -> pd.DataFrame | None:
    """The KPI table of the week up to ``as_of`` (see :func:`kpi_table`); None before tracking."""
    since, until = week_window(as_of)
    sent = load_sent(engine, since - dt.timedelta(days=7))
    sent = sent[sent["sent_at"] <= pd.Timestamp(until)]
    return kpi_table(sent, until)


def kpi_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """``table`` as rows for a Prefect table artifact (rates as percentages, "n/a" for none)."""
    rows = []
    for rec in to_records(table):
        row: dict[str, Any] = {}
        for key, value in rec.items():
            row[key] = percent(value) if key.endswith("_rate") else value
        rows.append(row)
    return rows

"""The forecast: what the policy will send each day for the next N days if nothing is paid."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pandas as pd

from dunning.core.portfolio import Portfolio
from dunning.core.status import ReminderStatus as S
from dunning.policy.model import Policy
from dunning.policy.planner import check_as_of, plan, segment_frame

FORECAST_COLUMNS = ["day", "stage", "channel", "count"]


def simulate(portfolio: Portfolio, as_of: datetime, policy: Policy, days: int) -> pd.DataFrame:
    """The send lines of ``days`` consecutive daily runs from ``as_of``, with a ``day`` column.

    Each day assumes the previous days' sends happened (they join the ledger as sent) and
    nothing is paid. The window's hours are widened to the whole day, so a day counts every
    reminder sendable that local calendar day; weekends and holidays still defer.
    """
    as_of = check_as_of(as_of)
    whole_day = replace(
        policy, send_window=replace(policy.send_window, start_minute=0, end_minute=1440)
    )
    segments = segment_frame(portfolio, as_of, policy)
    ledger = portfolio.ledger
    sent_days = []
    for k in range(days):
        at = as_of + timedelta(days=k)
        lines = plan(replace(portfolio, ledger=ledger), at, whole_day, segments=segments)
        sends = lines.loc[lines["action"] == "send"]
        sent_days.append(sends.assign(day=at.date()))
        new_rows = pd.DataFrame(
            {
                "invoice_id": sends["invoice_id"].to_numpy(),
                "stage": sends["stage"].astype(str).to_numpy(),
                "channel": sends["channel"].astype(str).to_numpy(),
                "status": str(S.SENT),
                "sent_at": pd.Timestamp(at),
                "claimed_at": pd.Timestamp(at),
                "planned_at": pd.Timestamp(at),
            }
        )
        ledger = pd.concat([_plain(ledger), new_rows], ignore_index=True)
    return pd.concat(sent_days, ignore_index=True) if sent_days else pd.DataFrame()


def _plain(ledger: pd.DataFrame) -> pd.DataFrame:
    """``ledger`` with string columns instead of categoricals, so rows can be appended."""
    return ledger.astype({c: str for c in ("stage", "channel", "status") if c in ledger.columns})


def forecast(portfolio: Portfolio, as_of: datetime, policy: Policy, days: int = 30) -> pd.DataFrame:
    """Per day, stage and channel, the count of reminders the policy would send (columns
    day, stage, channel, count), days from ``as_of`` on, assuming nothing is paid."""
    if days < 1:
        raise ValueError("days must be at least 1")
    sends = simulate(portfolio, as_of, policy, days)
    if sends.empty:
        return pd.DataFrame(columns=FORECAST_COLUMNS)
    counts = (
        sends.assign(stage=sends["stage"].astype(str), channel=sends["channel"].astype(str))
        .groupby(["day", "stage", "channel"])
        .size()
        .rename("count")
        .reset_index()
    )
    return counts[FORECAST_COLUMNS]

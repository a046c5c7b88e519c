"""Shared parts of the operator-side tests: the next plan, read the way a run reads it."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Engine

from dunning.policy import load_policy, plan
from dunning.portfolio import load_portfolio

# Tuesday 24 Nov 2026, 15:00 UTC = 10:00 in New York: inside the default send window.
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


def next_plan(engine: Engine, as_of: dt.datetime = AS_OF) -> pd.DataFrame:
    """The plan lines a run at ``as_of`` would act on (invoice_number, channel, action, reason)."""
    return plan(load_portfolio(engine), as_of, load_policy())


def line(frame: pd.DataFrame, invoice: str, channel: str) -> tuple[str, str]:
    """(action, reason) of ``invoice``'s line on ``channel``."""
    rows = frame[(frame["invoice_number"] == invoice) & (frame["channel"] == channel)]
    assert len(rows) == 1, f"expected one {channel} line for {invoice}, got {len(rows)}"
    return str(rows["action"].iloc[0]), str(rows["reason"].iloc[0])

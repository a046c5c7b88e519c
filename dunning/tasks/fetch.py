"""Fetch: load the portfolio (customers, open invoices, history, ledger) as DataFrames."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import task

from dunning.config import get_settings
from dunning.core.portfolio import Portfolio
from dunning.db import check_ready, get_engine
from dunning.policy import load_policy
from dunning.portfolio import load_portfolio


@task(name="fetch-portfolio", description="Load invoices, customers, history and the ledger.")
def fetch_portfolio(
    invoice_numbers: list[str] | None = None,
    shard: tuple[int, int] | None = None,
    actionable_at: dt.datetime | None = None,
    policy_path: Path | None = None,
) -> Portfolio:
    """The portfolio to plan over (optionally only some invoices, or one shard's customers:
    ``shard`` = (shards, k)).

    ``actionable_at`` (tz-aware): only the invoices that could be actionable then under the
    policy at ``policy_path`` (None: the default policy) are in scope, with their customers'
    history (``dunning.portfolio.load_portfolio``; customers with a usable segmentation
    snapshot row within DUNNING_SEGMENT_SNAPSHOT_MAX_AGE_HOURS: only the history the planner
    reads beyond segmentation); the plan's lines for them equal the full
    plan's, and the invoices left out would only have had informational skips.
    """
    engine = get_engine()
    check_ready(engine)
    policy = load_policy(policy_path) if actionable_at is not None else None
    # The plan task reads the snapshot with the same age (run_segments): a customer loaded
    # without its full history is segmented from its snapshot row, never on the fly.
    hours = get_settings().segment_snapshot_max_age_hours
    return load_portfolio(
        engine,
        invoice_numbers=invoice_numbers,
        shard=shard,
        actionable_at=actionable_at,
        policy=policy,
        snapshot_max_age=dt.timedelta(hours=hours) if hours else None,
    )

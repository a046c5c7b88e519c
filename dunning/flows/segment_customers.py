"""The segment-customers flow (daily, and after a sync that changed payment history):
segment every customer by payment history and store the snapshot hourly runs read."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from dunning.db import check_ready, get_engine
from dunning.db.models import utcnow
from dunning.params import AsOf
from dunning.policy import load_policy, segment_frame
from dunning.portfolio import load_portfolio
from dunning.segment_snapshot import SnapshotWrite, snapshot_markdown, write_snapshot
from dunning.segments.rules import segment_summary
from dunning.timeouts import flow_timeout


@task(
    name="publish-segment-snapshot",
    description="The snapshot's artifacts: balances per segment, movement since the last.",
    cache_policy=NO_CACHE,
)
def publish_snapshot(summary: pd.DataFrame, written: SnapshotWrite) -> None:
    """Publishes the markdown artifact ``segment-snapshot`` and the table artifact
    ``segment-snapshot-movement`` (counts and balances only, no customer named)."""
    create_markdown_artifact(
        key="segment-snapshot",
        markdown=snapshot_markdown(summary, written),
        description="Customers and open balances per segment, and the movement since the "
        "last snapshot.",
    )
    create_table_artifact(
        key="segment-snapshot-movement",
        table=[
            {
                "from": str(r["from_segment"]),
                "to": str(r["to_segment"]),
                "customers": int(r["customers"]),
            }
            for r in written.movement.to_dict("records")
        ],
        description="Customers per (segment in the last snapshot, segment now); (new): none.",
    )


@flow(
    name="segment-customers",
    log_prints=False,
    timeout_seconds=flow_timeout("segment_customers"),
    description="Segment every customer by payment history and store the snapshot hourly "
    "runs read; the artifact shows customers and open balances per segment and the movement "
    "since the last snapshot.",
)
def segment_customers(as_of: AsOf = None) -> dict[str, Any]:
    """Computes every customer's features and segment at ``as_of`` (default now, UTC) with
    the configured policy, replaces the snapshot (customer_segments) with them and publishes
    the markdown artifact ``segment-snapshot`` and the table artifact
    ``segment-snapshot-movement`` (counts and balances only, no customer named).

    Returns ``as_of`` (ISO), ``customers``, ``moved`` (changed segment since their last
    row), ``new`` (no row before) and ``segments`` (customers per segment).
    """
    log = get_run_logger()
    when = utcnow() if as_of is None else _utc(as_of)
    engine = get_engine()
    check_ready(engine)
    policy = load_policy()
    portfolio = load_portfolio(engine)
    frame = segment_frame(portfolio, when, policy)
    written = write_snapshot(engine, frame, when, policy)
    summary = segment_summary(portfolio, frame, when)
    publish_snapshot(summary, written)
    moves = written.movement
    counts = frame["segment"].value_counts()
    new = int(moves.loc[moves["from_segment"] == "(new)", "customers"].sum())
    log.info(
        "segmented %d customer(s) as of %s: %d changed segment, %d new",
        len(frame),
        when.isoformat(),
        written.moved,
        new,
    )
    return {
        "as_of": when.isoformat(),
        "customers": len(frame),
        "moved": written.moved,
        "new": new,
        "segments": {str(k): int(v) for k, v in counts.items()},
    }


def _utc(instant: dt.datetime) -> dt.datetime:
    """``instant`` in UTC (a naive one is taken as UTC, as the as_of parameter says)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        return instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(dt.UTC)


if __name__ == "__main__":
    segment_customers()

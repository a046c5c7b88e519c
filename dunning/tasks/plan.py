"""Plan: segment customers and decide each invoice's reminder (pure policy code)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from dunning.config import get_settings
from dunning.core.portfolio import Portfolio
from dunning.core.skip import SkipReason
from dunning.db import get_engine
from dunning.experiments.assign import apply_experiments
from dunning.experiments.store import promotions
from dunning.policy import Policy, load_policy, plan
from dunning.policy.model import base_stage
from dunning.policy.planner import FEATURE_COLUMNS
from dunning.preflight import check_templates as _check_templates
from dunning.segment_snapshot import segments_for


def select_lines(
    lines: pd.DataFrame,
    *,
    channels: list[str] | None,
    segments: list[str] | None,
    stages: list[str] | None,
    max_messages: int | None,
    as_of: dt.datetime,
) -> pd.DataFrame:
    """The plan restricted to the run's channels, segments and stages, with sends beyond
    ``max_messages`` deferred to the next run (most overdue first)."""
    keep = pd.Series(True, index=lines.index)
    if channels:
        keep &= lines["channel"].isin(channels)
    if segments:
        keep &= lines["segment"].astype(str).isin(segments)
    if stages:
        # Repeats and a call's retry count as their stage (final_notice_r2.retry: final_notice).
        stage = lines["stage"].astype(str)
        keep &= stage.map({n: base_stage(n) for n in stage.unique()}).isin(stages)
    out = lines[keep].copy()
    for col in ("action", "reason"):  # free text from here on (the planner may use categoricals)
        if col in out.columns and isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(object)
    if max_messages is not None:
        sends = out[out["action"] == "send"]
        if len(sends) > max_messages:
            order = (
                sends.sort_values("days_overdue", ascending=False)
                if ("days_overdue" in sends.columns)
                else sends
            )
            over = order.index[max_messages:]
            out.loc[over, "action"] = "defer"
            out.loc[over, "reason"] = SkipReason.MAX_MESSAGES_PER_RUN.value
            out.loc[over, "not_before"] = pd.Timestamp(as_of) + pd.Timedelta(hours=1)
    return out


def run_segments(portfolio: Portfolio, as_of: dt.datetime, policy: Policy) -> pd.DataFrame | None:
    """The run's segment frame: stored rows at most DUNNING_SEGMENT_SNAPSHOT_MAX_AGE_HOURS
    old, the other customers segmented on the fly; None (the planner segments everyone) when
    that setting is 0."""
    hours = get_settings().segment_snapshot_max_age_hours
    if not hours:
        return None
    # Only what the planner reads: the segment and the features its lines carry.
    frame, used = segments_for(
        get_engine(),
        portfolio,
        as_of,
        policy,
        max_age=dt.timedelta(hours=hours),
        features=FEATURE_COLUMNS,
    )
    get_run_logger().info(
        "segments: %d customer(s) from the snapshot, %d segmented now",
        used.from_snapshot,
        used.on_the_fly,
    )
    return frame


@task(
    name="plan-reminders",
    description="Segment customers and plan each invoice's reminder.",
    # Side effects every time: never served from a cache, and no hashing of the inputs.
    cache_policy=NO_CACHE,
)
def plan_reminders(
    portfolio: Portfolio,
    as_of: dt.datetime,
    policy_path: Path | None = None,
    channels: list[str] | None = None,
    segments: list[str] | None = None,
    stages: list[str] | None = None,
    max_messages: int | None = None,
) -> tuple[pd.DataFrame, Policy]:
    """The plan lines for ``as_of`` (send, defer, skip with reasons) and the policy used.

    Segments come from the segmentation snapshot (the segment-customers flow) where a
    customer's row is usable, else are computed now (see ``dunning.segment_snapshot``).
    """
    policy = load_policy(policy_path)
    lines = plan(portfolio, as_of, policy, segments=run_segments(portfolio, as_of, policy))
    if policy.experiments:
        # Each customer's arm acts on its lines (holdout, channels, hours, variant); an
        # experiment ended by a promotion applies its winning arm to everyone.
        customers = portfolio.customers
        zones = dict(
            zip(
                customers["customer_id"].astype(str),
                customers["timezone"].astype(str),
                strict=True,
            )
        )
        lines = apply_experiments(lines, policy.experiments, as_of, zones, promotions(get_engine()))
    lines = select_lines(
        lines,
        channels=channels,
        segments=segments,
        stages=stages,
        max_messages=max_messages,
        as_of=as_of,
    )
    return lines, policy


@task(
    name="check-templates",
    description="Render every template the run's send lines need, before anything is sent.",
    cache_policy=NO_CACHE,
)
def check_templates(lines: pd.DataFrame) -> int:
    """How many sample messages rendered; a TemplateError (template, line, field) fails the
    run before the plan is written to the ledger, so nothing is sent or marked."""
    return _check_templates(lines)

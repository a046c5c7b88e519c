"""Deterministic arm assignment and what an arm does to the planner's lines.

Pure pandas: no Prefect, no database, no provider SDK. A customer's arm is a hash of the
experiment's name and the customer id, so it is the same in every run and every shard, and
a customer stays in one arm for the experiment's life.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from dunning.core.skip import SkipReason
from dunning.policy.experiments import Arm, Experiment

#: Plan-line columns the experiments add: the experiment and arm the line takes part in
#: (None: none) and the template variant to render (None: the control templates).
EXPERIMENT_COLUMNS = ("experiment", "arm", "variant")


def bucket(experiment: str, customer_id: str) -> float:
    """A number in [0, 1) fixed by the experiment name and the customer id (SHA-256 of
    ``"<experiment>\\0<customer_id>"``, first 8 bytes): the same on every machine and run."""
    digest = hashlib.sha256(f"{experiment}\0{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(experiment: Experiment, customer_id: str) -> Arm:
    """The arm of ``customer_id`` in ``experiment``: arms take consecutive slices of [0, 1)
    in their order, each as wide as its share."""
    point = bucket(experiment.name, str(customer_id))
    edge = 0.0
    for arm in experiment.arms:
        edge += arm.share
        if point < edge:
            return arm
    return experiment.arms[-1]  # rounding of shares that add up to 1


def assign_many(experiment: Experiment, customer_ids: Iterable[str]) -> dict[str, str]:
    """Arm name per distinct customer id of ``customer_ids``."""
    return {c: assign(experiment, c).name for c in dict.fromkeys(str(c) for c in customer_ids)}


def _base(stage: str) -> str:
    # dunning.render.base_stage without importing the renderer (it pulls in the channels).
    name = stage.removesuffix(".retry")
    head, _, tail = name.rpartition("_r")
    return head if head and tail.isdigit() else name


def _local_minutes(zones: Sequence[str], as_of: dt.datetime) -> np.ndarray:
    out = np.zeros(len(zones), dtype=np.int64)
    cache: dict[str, int] = {}
    for i, zone in enumerate(zones):
        if zone not in cache:
            try:
                local = as_of.astimezone(ZoneInfo(str(zone)))
            except (ZoneInfoNotFoundError, ValueError):
                local = as_of.astimezone(dt.UTC)
            cache[zone] = local.hour * 60 + local.minute
        out[i] = cache[zone]
    return out


def _next_start(zone: str, as_of: dt.datetime, start: int) -> pd.Timestamp:
    """The next instant (UTC) at ``start`` minutes after local midnight in ``zone``."""
    try:
        tz: dt.tzinfo = ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        tz = dt.UTC
    local = as_of.astimezone(tz)
    day = local.date()
    when = dt.datetime.combine(day, dt.time(start // 60, start % 60), tzinfo=tz)
    if when <= local:
        when = dt.datetime.combine(
            day + dt.timedelta(days=1), dt.time(start // 60, start % 60), tzinfo=tz
        )
    return pd.Timestamp(when.astimezone(dt.UTC))


def apply_experiments(
    lines: pd.DataFrame,
    experiments: Sequence[Experiment],
    as_of: dt.datetime,
    zones: Mapping[str, str],
    promoted: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """``lines`` (the planner's, one per invoice and channel) with the experiments applied.

    Adds the columns experiment, arm and variant. A send or defer line at a stage a running
    experiment covers is labelled with the experiment and the customer's arm, and the arm
    acts on it: holdout → skip (reason ``holdout``); channels → a line on another channel is
    skipped (``experiment_channel``); send_hours → a send outside the hours (customer's local
    time, from ``zones``: customer id → IANA zone) is deferred to the next start
    (``experiment_send_hours``); variant → the variant column. Skip lines are left alone.

    ``promoted`` (experiment name → arm name): experiments ended by a promotion; their arm
    acts on every matching line from then on, whatever the dates, without the labels.
    """
    out = lines.copy()
    for col in EXPERIMENT_COLUMNS:
        out[col] = pd.Series([None] * len(out), index=out.index, dtype=object)
    if out.empty:
        return out
    for col in ("action", "reason"):
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(object)
    promoted = promoted or {}
    stages = out["stage"].astype(str).map(_base)
    live = out["action"].astype(str).isin(["send", "defer"])
    for exp in experiments:
        winner = exp.arm(promoted[exp.name]) if exp.name in promoted else None
        if winner is None and not exp.running(as_of):
            continue
        mask = (live & stages.map(exp.covers) & out["experiment"].isna()).to_numpy(bool)
        if not mask.any():
            continue
        customers = out.loc[mask, "customer_id"].astype(str)
        if winner is not None:
            arms = pd.Series(winner.name, index=customers.index)
        else:
            arms = customers.map(assign_many(exp, customers))
            out.loc[arms.index, "experiment"] = exp.name
            out.loc[arms.index, "arm"] = arms
        for arm in exp.arms:
            idx = arms.index[arms.to_numpy() == arm.name]
            if len(idx):
                _act(out, idx, arm, as_of, zones)
    return out


def _act(
    out: pd.DataFrame, idx: pd.Index, arm: Arm, as_of: dt.datetime, zones: Mapping[str, str]
) -> None:
    """Apply ``arm`` to the lines ``idx`` of ``out`` in place."""
    if arm.holdout:
        out.loc[idx, "action"] = "skip"
        out.loc[idx, "reason"] = SkipReason.HOLDOUT.value
        out.loc[idx, "not_before"] = pd.NaT
    elif arm.variant:
        out.loc[idx, "variant"] = arm.variant
    elif arm.channels is not None:
        other = idx[~out.loc[idx, "channel"].astype(str).isin(arm.channels).to_numpy()]
        out.loc[other, "action"] = "skip"
        out.loc[other, "reason"] = SkipReason.EXPERIMENT_CHANNEL.value
        out.loc[other, "not_before"] = pd.NaT
    elif arm.send_hours:
        start, end = arm.send_hours
        sends = idx[(out.loc[idx, "action"] == "send").to_numpy()]
        zone = [zones.get(str(c), "UTC") for c in out.loc[sends, "customer_id"]]
        minutes = _local_minutes(zone, as_of)
        outside = (minutes < start) | (minutes >= end)
        late = sends[outside]
        if len(late):
            out.loc[late, "action"] = "defer"
            out.loc[late, "reason"] = SkipReason.EXPERIMENT_SEND_HOURS.value
            out.loc[late, "not_before"] = [
                _next_start(z, as_of, start) for z, o in zip(zone, outside, strict=True) if o
            ]

"""Experiment reports over the database: what the CLI and the track-responses flow show."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import Engine

from dunning.db.models import utcnow
from dunning.experiments.analysis import analyse, required_sample_size
from dunning.experiments.store import ExperimentError, experiment_rows, promotions
from dunning.policy.experiments import Experiment
from dunning.policy.model import Policy


def status_of(experiment: Experiment, as_of: dt.datetime, promoted: dict[str, str]) -> str:
    """``promoted`` (ended by a promotion), ``scheduled``, ``running`` or ``ended``."""
    if experiment.name in promoted:
        return "promoted"
    day = as_of.astimezone(dt.UTC).date()
    if day < experiment.start:
        return "scheduled"
    return "ended" if day > experiment.end else "running"


def find(policy: Policy, name: str) -> Experiment:
    """The experiment ``name`` of ``policy``; ExperimentError lists the names there are."""
    found = policy.experiment(name)
    if found is None:
        names = ", ".join(e.name for e in policy.experiments) or "none"
        raise ExperimentError(
            f"no experiment {name!r} in policy {policy.source}; experiments there: {names} "
            "(add an [[experiments]] table or pass --policy)"
        )
    return found


def experiment_report(
    engine: Engine, policy: Policy, name: str, as_of: dt.datetime | None = None
) -> dict[str, Any]:
    """The report of experiment ``name`` as of ``as_of`` (default now, UTC): see
    :func:`dunning.experiments.analysis.analyse`; ``promoted_arm`` when it was promoted."""
    experiment = find(policy, name)
    at = as_of or utcnow()
    promoted = promotions(engine)
    report = analyse(
        experiment, experiment_rows(engine, experiment, at), at, status_of(experiment, at, promoted)
    )
    report["promoted_arm"] = promoted.get(experiment.name)
    return report


def experiment_list(
    engine: Engine, policy: Policy, as_of: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """One dict per experiment of ``policy``: name, stage, start, end, metric, status, arms
    (name, share, does), required_n (arm → matured reminders needed), promoted_arm."""
    at = as_of or utcnow()
    promoted = promotions(engine)
    return [
        {
            "name": e.name,
            "stage": e.stage,
            "start": e.start.isoformat(),
            "end": e.end.isoformat(),
            "metric": e.metric,
            "status": status_of(e, at, promoted),
            "arms": [{"name": a.name, "share": a.share, "does": a.describe()} for a in e.arms],
            "required_n": required_sample_size(e),
            "promoted_arm": promoted.get(e.name),
        }
        for e in policy.experiments
    ]


def artifact_key(name: str) -> str:
    """The Prefect artifact key of experiment ``name``: ``experiment-<name>``, lowercase,
    other characters as dashes (Prefect keys allow lowercase letters, digits and dashes)."""
    return "experiment-" + re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")

"""Publish each experiment's report as Prefect artifacts (refreshed by track-responses)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from dunning.db import get_engine
from dunning.experiments.analysis import to_markdown
from dunning.experiments.service import artifact_key, experiment_report
from dunning.policy import load_policy


def _table(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for arm in report["arms"]:
        rows.append(
            {
                "arm": arm["arm"],
                "does": arm["description"],
                "n": arm["n"],
                "matured_n": arm["matured_n"],
                "required_n": arm["required_n"],
                "paid_share": arm["paid_share"],
                "paid_share_ci": arm["paid_share_ci"],
                "money_per_reminder": {m["currency"]: m["per_reminder"] for m in arm["money"]},
                "verdict": report["verdict"],
            }
        )
    return rows


@task(
    name="publish-experiments",
    description="One markdown and one table artifact per experiment of the policy.",
    cache_policy=NO_CACHE,
)
def publish_experiments(as_of: dt.datetime | None = None) -> dict[str, str]:
    """Experiment name → verdict, for every experiment of the policy in force; each gets the
    artifacts ``experiment-<name>`` (markdown report) and ``experiment-<name>-arms`` (table).
    """
    policy = load_policy()
    verdicts: dict[str, str] = {}
    for experiment in policy.experiments:
        report = experiment_report(get_engine(), policy, experiment.name, as_of)
        key = artifact_key(experiment.name)
        create_markdown_artifact(
            key=key,
            markdown=to_markdown(report),
            description=f"A/B test {experiment.name}: arms, matured n, paid share and money "
            "collected within 7 days with intervals, the tests used, the verdict.",
        )
        create_table_artifact(
            key=f"{key}-arms",
            table=_table(report),
            description=f"A/B test {experiment.name}: one row per arm.",
        )
        if report["srm"]["warning"]:
            get_run_logger().warning("experiment %s: %s", experiment.name, report["srm"]["warning"])
        verdicts[experiment.name] = report["verdict"]
    return verdicts

"""The collections-report flow (weekly): recovery curves, collected after each stage, DSO."""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from dunning.db import get_engine
from dunning.params import AsOf
from dunning.policy import load_policy
from dunning.timeouts import flow_timeout
from dunning.tracking.collections import collections_analysis, curves_png, to_markdown


@flow(
    name="collections-report",
    log_prints=False,
    timeout_seconds=flow_timeout("collections_report"),
    description="Weekly recovery analytics: share paid by days since due per segment and "
    "stage reached, amount collected after each stage per currency, DSO over time, a chart.",
)
def collections_report(as_of: AsOf = None) -> dict[str, int]:
    """Publishes the markdown artifact ``collections-report`` (tables and the curves as an
    embedded PNG) and the table artifact ``collections-collected-after-stage``; returns the
    number of invoices and of curve points."""
    engine = get_engine()
    stage_order = load_policy().stage_order
    report, facts = collections_analysis(engine, stage_order, as_of)
    png = curves_png(facts, dt.datetime.fromisoformat(report["as_of"]))
    create_markdown_artifact(
        key="collections-report",
        markdown=to_markdown(report, png),
        description="Share paid by days since due (per segment, per stage reached), collected "
        "after each stage per currency, DSO over time, and the curves as a chart.",
    )
    create_table_artifact(
        key="collections-collected-after-stage",
        table=report["collected_after_stage"],
        description="Payments credited to the last stage sent before them, per currency.",
    )
    get_run_logger().info("collections report over %d invoice(s)", report["invoices"])
    return {"invoices": report["invoices"], "curve_points": len(report["curves_by_stage"])}


if __name__ == "__main__":
    collections_report()

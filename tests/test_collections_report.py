"""Recovery analytics: cohort curves, collected after each stage, DSO over time, the chart,
`dunning report collections` and the collections-report flow's artifact."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from dunning.cli import _load_commands, app
from dunning.db import session_scope
from dunning.db.models import Payment
from dunning.policy import load_policy
from dunning.tracking.collections import collections_analysis, curves_png
from tests.experiment_sim import simulate_db

AS_OF = dt.datetime(2026, 11, 12, 11, tzinfo=dt.UTC)


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    simulate_db(engine, customers=60, lift=0.25, seed=5)
    return engine


def test_curves_collected_after_stage_dso_and_chart(seeded: Engine):
    report, facts = collections_analysis(seeded, load_policy().stage_order, AS_OF)
    assert report["invoices"] == 60
    overall = [r for r in report["curves_by_stage"] if r["stage_reached"] == "all"]
    shares = [r["share_paid"] for r in overall if r["share_paid"] is not None]
    assert shares == sorted(shares) and shares[-1] > 0  # a cumulative curve
    # Due 2026-11-02, as of 2026-11-12: only days 0 and 7 have invoices old enough.
    assert [r["n"] for r in overall] == [60, 60, 0, 0, 0, 0]
    assert {r["stage_reached"] for r in report["curves_by_stage"]} >= {"all", "overdue_1"}
    with session_scope(seeded) as s:
        paid = s.scalar(select(func.sum(Payment.amount)).where(Payment.paid_at <= AS_OF))
    credited = sum(Decimal(r["collected"]) for r in report["collected_after_stage"])
    assert credited == paid  # every payment by then is credited to exactly one stage
    assert {r["stage"] for r in report["collected_after_stage"]} <= {
        *load_policy().stage_order,
        "none",
    }
    # Weekly points of the last 12 weeks; weeks before the first invoice have none.
    dso = report["dso_over_time"]
    assert 1 < len(dso) <= 12 and dso[-1]["as_of"] == "2026-11-12"
    assert dso[-1]["currency"] == "EUR" and 0 < dso[-1]["dso"] < dso[0]["dso"]  # payments came
    png = curves_png(facts, AS_OF)
    assert png.startswith(b"\x89PNG")


def test_cli_report_collections_json_and_chart(seeded: Engine, tmp_path: Path):
    _load_commands()
    chart = tmp_path / "curves.png"
    res = CliRunner().invoke(
        app,
        ["report", "collections", "--as-of", "2026-11-12T11:00Z", "--json", "--chart", str(chart)],
    )
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert set(body) == {
        "as_of",
        "invoices",
        "curves_by_segment",
        "curves_by_stage",
        "collected_after_stage",
        "dso_over_time",
    }
    assert chart.read_bytes().startswith(b"\x89PNG")


@pytest.mark.prefect
def test_flow_publishes_the_markdown_artifact_with_the_chart(seeded: Engine, prefect_server):
    from prefect.artifacts import Artifact

    from dunning.flows.collections_report import collections_report

    counts = collections_report(as_of=AS_OF)
    assert counts["invoices"] == 60
    artifact = Artifact.get("collections-report")
    assert artifact is not None and "data:image/png;base64," in str(artifact.data)

"""One tiny run of the delivery benchmark harness: JSON shape and matching counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.run import main
from tests.conftest import PG_URL

pytestmark = pytest.mark.prefect


def test_a_tiny_benchmark_run_writes_results_whose_counts_match(db_url: str, tmp_path: Path):
    backend = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    out = tmp_path / "bench.json"
    main(
        [
            "--invoices",
            "1300",
            "--customers",
            "260",
            "--backends",
            backend,
            "--pg-url",
            PG_URL or "",
            "--naive-max-messages",
            "10",
            "--rate-messages",
            "20",
            "--plan-invoices",
            "5000",
            "--plan-customers",
            "1000",
            "--latency-ms",
            "0",
            "--out",
            str(out),
        ]
    )

    result = json.loads(out.read_text())
    # the plan-only benchmark ran on its synthetic portfolio (it broke once on a new column)
    assert result["plan"]["invoices"] == 5000 and result["plan"]["actions"]["send"] > 0
    figs = result["backends"][backend]
    ours, naive, floor = figs["ours"], figs["naive"], figs["floor"]
    assert ours["messages"] > 20
    for fig in (
        ours,
        naive,
        floor,
        floor["composed"],
        floor["email_bulk"],
        floor["email_per_message"],
    ):
        assert {
            "messages",
            "wall_s",
            "messages_per_s",
            "cpu_ms_per_message",
            "peak_rss_mb",
        } <= fig.keys()
        assert fig["provider_received"] == fig["messages"]
    # every delivery is in the ledger and at the provider, once
    assert ours["ledger"]["sent"] == ours["provider_received"]
    assert ours["ledger_matches_provider"] and naive["ledger_matches_provider"]
    assert naive["messages"] == 10
    # the Prefect server recorded every task run each flow created
    assert ours["task_runs_recorded"] == ours["task_runs_created"] >= 6
    assert naive["task_runs_recorded"] == naive["task_runs_created"] == 13
    # the floor sends what ours sent; emails go out with and without bulk alike
    assert floor["messages"] == floor["composed"]["messages"] == ours["messages"]
    assert floor["email_bulk"]["messages"] == floor["email_per_message"]["messages"] > 0
    limited = figs["sms_rate_limited"]
    assert 0 < limited["messages"] <= 20
    assert sum(limited["rate"]["per_second"]) == limited["messages"]
    assert set(figs["ratios"]) == {
        "ours_over_naive",
        "ours_over_floor",
        "ours_over_floor_composed",
        "ours_delivery_phase_over_floor",
    }
    # the sending part of ours, timed by the Prefect server, lies inside the end-to-end wall
    assert 0 < ours["delivery_phase"]["wall_s"] < ours["wall_s"]
    assert ours["in_flight_sends"] == floor["in_flight_sends"] == 16
    # Prefect API calls of ours were counted (the flow run's own state changes at least) and
    # the summary has the keys for this backend; scale benches not asked are not run
    calls = ours["prefect_api_calls"]
    assert calls["http_requests"] > 0 and calls["events"] > 0
    assert calls["per_1000_messages"] == round(1000 * calls["total"] / ours["messages"], 2)
    row = result["summary"][backend]
    assert row["prefect_api_calls_per_1000_messages"] == calls["per_1000_messages"]
    assert row["ours_over_floor_composed"] == figs["ratios"]["ours_over_floor_composed"]
    assert row["ours_peak_rss_mb"] == ours["peak_rss_mb"] > 0
    assert {"noop_hourly_run_s_1m", "segment_snapshot_s_1m", "ours_over_naive"} <= row.keys()
    assert all(not r["measured"] for r in result["scale"].values())


def test_a_scale_benchmark_absent_from_the_checkout_is_reported_not_measured(monkeypatch):
    from bench import run

    monkeypatch.setitem(run.SCALE_BENCHES, "hourly", "bench.bench_not_written_yet")
    assert run.run_scale_bench("hourly", []) == {
        "measured": False,
        "reason": "bench.bench_not_written_yet is not in this checkout",
    }


def test_the_summary_reads_each_scale_figure_per_backend():
    from bench.run import summary

    scale = {
        "hourly": {
            "measured": True,
            "sqlite": {"noop_hourly_run_s_1m": 3.5, "noop_hourly_run_peak_rss_mb": 300.0},
            "postgresql": {"noop_hourly_run_s_1m": 4.5, "noop_hourly_run_peak_rss_mb": 310.0},
        },
        "snapshot": {
            "measured": True,
            "backends": {"sqlite": {"segment_snapshot_s_1m": 20.0}},
        },
        "planstream": {"measured": False, "reason": "not run"},
    }
    rows = summary({"backends": {}, "scale": scale})
    assert rows["sqlite"]["noop_hourly_run_s_1m"] == 3.5
    assert rows["sqlite"]["segment_snapshot_s_1m"] == 20.0
    assert rows["postgresql"]["noop_hourly_run_s_1m"] == 4.5
    assert rows["postgresql"]["segment_snapshot_s_1m"] is None

"""Benchmark: the A/B-test statistics over many simulated experiments (not a timed test).

    .venv/bin/python bench/bench_experiments.py --reps 200 --customers 2000 --lift 0.05

For ``--reps`` seeds each, with the planner and the assignment over an in-memory portfolio
(tests/experiment_sim.py: simulate_plan): with no true effect, the share of runs whose
verdict is "no difference" (should be about 1 - alpha); with the true ``--lift``, the share
found better (the power) and the share of paid-share intervals covering the lift (should be
about 1 - alpha). Then one run through the database (planner, ledger, delivery, payments over
simulated days) with ``--db-customers``, timed. Prints the figures and writes them as JSON to
bench/results/experiments.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dunning import db  # noqa: E402
from tests.experiment_sim import sim_policy, simulate_db, simulate_plan  # noqa: E402


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the figures it printed."""
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--reps", type=int, default=200)
    args.add_argument("--customers", type=int, default=2000)
    args.add_argument("--baseline", type=float, default=0.30)
    args.add_argument("--lift", type=float, default=0.08)
    args.add_argument("--mde", type=float, default=0.08)
    args.add_argument("--db-customers", type=int, default=1000)
    args.add_argument("--out", type=Path, default=Path("bench/results/experiments.json"))
    opts = args.parse_args(argv)
    policy = sim_policy(mde=opts.mde, baseline=opts.baseline)
    started = time.perf_counter()
    null = [
        simulate_plan(
            customers=opts.customers, lift=0.0, seed=s, policy=policy, p_control=opts.baseline
        )
        for s in range(opts.reps)
    ]
    effect = [
        simulate_plan(
            customers=opts.customers,
            lift=opts.lift,
            seed=10_000 + s,
            policy=policy,
            p_control=opts.baseline,
        )
        for s in range(opts.reps)
    ]
    plan_seconds = time.perf_counter() - started

    def covered(report: dict[str, Any]) -> bool:
        comp = report["comparisons"][0]["paid_share"]
        return comp is not None and comp["ci"][0] <= opts.lift <= comp["ci"][1]

    figures: dict[str, Any] = {
        "reps": opts.reps,
        "customers": opts.customers,
        "baseline": opts.baseline,
        "lift": opts.lift,
        "mde": opts.mde,
        "required_n_per_arm": null[0]["required_n"],
        "null_no_difference_share": sum(r["verdict"] == "no difference" for r in null) / opts.reps,
        "null_not_enough_data_share": sum(r["verdict"] == "not enough data" for r in null)
        / opts.reps,
        "effect_found_better_share": sum(r["verdict"] == "B better than A" for r in effect)
        / opts.reps,
        "effect_ci_coverage": sum(covered(r) for r in effect) / opts.reps,
        "simulate_plan_seconds_per_rep": round(plan_seconds / (2 * opts.reps), 3),
    }
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        db.upgrade(url)
        started = time.perf_counter()
        report = simulate_db(db.get_engine(url), customers=opts.db_customers, lift=0.25, seed=1)
        figures["db_run"] = {
            "customers": opts.db_customers,
            "simulated_days": 11,
            "seconds": round(time.perf_counter() - started, 1),
            "verdict": report["verdict"],
            "paid_share_difference": report["comparisons"][0]["paid_share"],
        }
        db.get_engine(url).dispose()
    print(json.dumps(figures, indent=2, default=str))
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return figures


if __name__ == "__main__":
    main()

"""Done-when of issue 20: a simulated portfolio where arm B truly raises the share paid
within 7 days is found better, the interval covering the true effect; with no true effect
the report says "no difference" in at least 18 of 20 seeded repetitions.

Small and fast here; bench/bench_experiments.py runs the large version and prints figures.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import yaml
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from dunning.cli import _load_commands, app
from dunning.db import session_scope
from dunning.db.models import OperatorAction, Reminder
from dunning.policy import DEFAULT_POLICY_PATH
from tests.experiment_sim import simulate_db, simulate_plan

LIFT = 0.25


def test_arm_b_truly_better_is_found_better_through_planner_ledger_and_delivery(
    engine: Engine, tmp_path: Path
):
    report = simulate_db(engine, customers=300, lift=LIFT, seed=7)
    assert report["enough_data"], report["arms"]
    assert report["required_n"] == {"A": 93, "B": 93}
    (comp,) = report["comparisons"]
    low, high = comp["paid_share"]["ci"]
    assert comp["paid_share"]["verdict"] == "better"
    assert low <= LIFT <= high, (low, high)
    assert report["verdict"] == "B better than A"  # primary metric: money collected in 7 days
    assert report["srm"]["warning"] is None
    arms = {a["arm"]: a for a in report["arms"]}
    assert arms["A"]["matured_n"] + arms["B"]["matured_n"] == 300
    with session_scope(engine) as s:
        # Arm B's reminders were written from its variant template, arm A's from the control.
        used = dict(
            s.execute(
                select(Reminder.arm, func.min(Reminder.template))
                .where(Reminder.experiment == "sim")
                .group_by(Reminder.arm)
            ).all()
        )
    assert used == {"A": "overdue_1/email.en", "B": "overdue_1/email.en.B"}


def test_no_true_effect_reports_no_difference_in_18_of_20_repetitions():
    verdicts = [simulate_plan(customers=300, lift=0.0, seed=seed)["verdict"] for seed in range(20)]
    assert "not enough data" not in verdicts
    assert sum(v == "no difference" for v in verdicts) >= 18, verdicts


def test_before_the_sample_size_is_reached_the_report_says_not_enough_data():
    report = simulate_plan(customers=150, lift=LIFT, seed=1)
    assert report["verdict"] == "not enough data"
    assert all(c["paid_share"] is None for c in report["comparisons"])
    assert all(a["matured_n"] < 93 for a in report["arms"])


def test_cli_list_report_and_promote_with_an_audit_row(engine: Engine, tmp_path: Path):
    simulate_db(engine, customers=120, lift=LIFT, seed=3)
    data = tomllib.loads(DEFAULT_POLICY_PATH.read_text())
    data["experiments"] = [
        {
            "name": "sim",
            "stage": "overdue_1",
            "start": "2026-11-01",
            "end": "2026-12-31",
            "mde": 0.15,
            "arms": [{"name": "A", "share": 0.5}, {"name": "B", "share": 0.5, "variant": "B"}],
        }
    ]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    _load_commands()
    runner = CliRunner()

    listed = runner.invoke(app, ["experiments", "list", "--policy", str(path), "--json"])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)["experiments"]
    assert row["name"] == "sim" and row["required_n"] == {"A": 162, "B": 162}

    report = runner.invoke(
        app,
        [
            "experiments",
            "report",
            "sim",
            "--policy",
            str(path),
            "--as-of",
            "2026-11-25T00:00Z",
            "--json",
        ],
    )
    assert report.exit_code == 0, report.output
    body = json.loads(report.stdout)
    assert body["verdict"] == "not enough data"  # 120 customers: fewer than 162 per arm
    assert {a["arm"] for a in body["arms"]} == {"A", "B"}

    unknown = runner.invoke(app, ["experiments", "report", "nope", "--policy", str(path)])
    assert unknown.exit_code == 1 and "no experiment 'nope'" in unknown.output

    bad_arm = runner.invoke(app, ["experiments", "promote", "sim", "C", "--policy", str(path)])
    assert bad_arm.exit_code == 1 and "choose one of A, B" in bad_arm.output
    done = runner.invoke(
        app, ["experiments", "promote", "sim", "B", "--policy", str(path), "--json"]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["variant"] == "B"
    again = runner.invoke(app, ["experiments", "promote", "sim", "A", "--policy", str(path)])
    assert again.exit_code == 1 and "already ended" in again.output
    with session_scope(engine) as s:
        audit = s.scalars(
            select(OperatorAction).where(OperatorAction.action == "experiment_promote")
        ).one()
        assert audit.target == "experiment sim" and audit.after["arm"] == "B"
    listed = runner.invoke(app, ["experiments", "list", "--policy", str(path), "--json"])
    assert json.loads(listed.stdout)["experiments"][0]["status"] == "promoted"

"""``dunning experiments list|report NAME|promote NAME ARM``: A/B tests judged by money."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown
from rich.table import Table

from dunning.cli.app import app, emit_json, fail, out, parse_instant
from dunning.db import check_ready, get_engine

experiments_app = typer.Typer(
    help="A/B tests of wording, timing and channel, judged by money collected.",
    no_args_is_help=True,
)
app.add_typer(experiments_app, name="experiments")

PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", help="Policy file (TOML/YAML); default DUNNING_POLICY_PATH."),
]
AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="Instant the report is made at (ISO 8601; default now)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def _policy(path: Path | None):  # noqa: ANN202 - a Policy
    from dunning.policy import load_policy

    return load_policy(path)


@experiments_app.command("list")
def list_experiments(
    policy: PolicyOption = None, as_of: AsOfOption = None, json_out: JsonOption = False
) -> None:
    """The policy's experiments: stage, dates, status, arms and the sample size each needs."""
    from dunning.experiments.service import experiment_list

    engine = get_engine()
    check_ready(engine)
    rows = experiment_list(engine, _policy(policy), parse_instant(as_of))
    if json_out:
        emit_json({"experiments": rows})
        return
    if not rows:
        out.print("no experiments in the policy (add an [[experiments]] table)")
        return
    grid = Table(
        "name", "stage", "start", "end", "status", "metric", "arms (share: does, n needed)"
    )
    for r in rows:
        arms = "\n".join(
            f"{a['name']} {a['share']:.0%}: {a['does']}, n={r['required_n'][a['name']]}"
            for a in r["arms"]
        )
        status = r["status"] + (f" ({r['promoted_arm']})" if r["promoted_arm"] else "")
        grid.add_row(r["name"], r["stage"], r["start"], r["end"], status, r["metric"], arms)
    out.print(grid)


@experiments_app.command("report")
def report_experiment(
    name: Annotated[str, typer.Argument(help="The experiment's name in the policy.")],
    policy: PolicyOption = None,
    as_of: AsOfOption = None,
    json_out: JsonOption = False,
) -> None:
    """Per arm: n, matured n, paid share and money collected per reminder within 7 days with
    intervals, the tests used, the sample-ratio check and the verdict ("not enough data"
    until every arm has the sample size its minimum detectable effect needs)."""
    from dunning.experiments.analysis import to_markdown
    from dunning.experiments.service import experiment_report
    from dunning.experiments.store import ExperimentError

    engine = get_engine()
    check_ready(engine)
    try:
        report = experiment_report(engine, _policy(policy), name, parse_instant(as_of))
    except ExperimentError as exc:
        fail(str(exc))
    if json_out:
        emit_json(report)
        return
    out.print(Markdown(to_markdown(report)))


@experiments_app.command("promote")
def promote_arm(
    name: Annotated[str, typer.Argument(help="The experiment's name in the policy.")],
    arm: Annotated[str, typer.Argument(help="The arm to make the default.")],
    policy: PolicyOption = None,
    json_out: JsonOption = False,
) -> None:
    """End experiment NAME and make ARM what every reminder of its stage gets (its template
    variant becomes the default), with an audit row."""
    from dunning.experiments.service import find
    from dunning.experiments.store import ExperimentError, promote
    from dunning.operations.audit import Actor

    engine = get_engine()
    check_ready(engine)
    try:
        done = promote(engine, find(_policy(policy), name), arm, Actor.os_user())
    except ExperimentError as exc:
        fail(str(exc))
    if json_out:
        emit_json(done)
        return
    variant = f" (template variant {done['variant']})" if done["variant"] else ""
    out.print(f"experiment {name} ended: arm {arm}{variant} is now the default at {done['stage']}")

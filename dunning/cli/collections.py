"""``dunning report collections``: recovery curves, collected after each stage, DSO."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown

from dunning.cli.app import app, emit_json, out, parse_instant
from dunning.db import check_ready, get_engine

report_app = typer.Typer(help="Reports over the ledger and the payments.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("collections")
def collections(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Instant the report is made at (ISO 8601; default now)."),
    ] = None,
    chart: Annotated[
        Path | None,
        typer.Option("--chart", help="Also write the curves as a PNG chart to this file."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Share of invoices paid by days since due, per segment and per stage reached (cohort
    curves); amount collected after each stage per currency; DSO over the last 12 weeks."""
    from dunning.policy import load_policy
    from dunning.tracking.collections import collections_analysis, curves_png, to_markdown

    engine = get_engine()
    check_ready(engine)
    at = parse_instant(as_of)
    report, facts = collections_analysis(engine, load_policy().stage_order, at)
    if chart is not None:
        import datetime as dt

        chart.write_bytes(curves_png(facts, dt.datetime.fromisoformat(report["as_of"])))
    if json_out:
        emit_json(report)
        return
    out.print(Markdown(to_markdown(report)))
    if chart is not None:
        out.print(f"chart written to {chart}")

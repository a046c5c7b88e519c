"""``dunning recovery``: the money side of reminders (balance reminded, collected, DSO)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from dunning.cli.app import app, emit_json, fail, out, parse_instant
from dunning.db import check_ready, get_engine


@app.command("recovery")
def recovery(
    by: Annotated[
        list[str] | None,
        typer.Option(help="Group by stage, segment or channel (repeatable; default all three)."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Instant the figures are measured at (ISO 8601; default now)."
        ),
    ] = None,
    dso_days: Annotated[
        int, typer.Option("--dso-days", min=1, help="Period of the DSO, in days up to --as-of.")
    ] = 90,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Balance reminded and amount collected within 7/14/30 days of a reminder, per currency,
    by stage, segment and channel; and the portfolio's DSO per currency."""
    from dunning.tracking.metrics import to_records
    from dunning.tracking.recovery import GROUPS, dso, money_report

    at = parse_instant(as_of)
    engine = get_engine()
    check_ready(engine)
    try:
        table = money_report(engine, at, by or GROUPS)
    except ValueError as exc:
        fail(f"--by: {exc}")
    rows, portfolio = to_records(table), dso(engine, at, dso_days)
    if json_out:
        emit_json({"by": rows, "dso": portfolio})
        return
    if rows:
        grid = Table(
            "dimension",
            "value",
            "currency",
            "reminders",
            "balance reminded",
            "collected 7d",
            "collected 14d",
            "collected 30d",
        )
        for r in rows:
            grid.add_row(
                r["dimension"],
                str(r["value"]),
                r["currency"],
                str(r["reminders"]),
                r["balance_reminded"],
                *(f"{r[f'collected_{d}d']} (n={r[f'collected_{d}d_n']})" for d in (7, 14, 30)),
            )
        out.print(grid)
    else:
        out.print("no reminders sent yet")
    grid = Table("currency", "receivables", "credit sales", "period (days)", "DSO (days)")
    for d in portfolio:
        grid.add_row(
            d["currency"],
            d["receivables"],
            d["credit_sales"],
            str(d["days"]),
            "n/a" if d["dso"] is None else str(d["dso"]),
        )
    out.print(grid)

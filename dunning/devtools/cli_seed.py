"""``dunning seed``: a deterministic synthetic portfolio for demos, tests and benchmarks."""

from __future__ import annotations

import datetime as dt
import time

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dunning.cli.app import app, console, emit_json, fail, show_progress
from dunning.config import get_settings
from dunning.db import get_engine
from dunning.devtools.seed import seed_portfolio
from dunning.errors import DunningError


def _parse_as_of(value: str | None) -> dt.date:
    """The --as-of date, default today in UTC."""
    if value is None:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"--as-of {value!r} is not a date; use YYYY-MM-DD")


@app.command("seed")
def seed(
    customers: int = typer.Option(1000, "--customers", min=0, help="Customers to create."),
    invoices: int = typer.Option(5000, "--invoices", min=0, help="Invoices to create."),
    seed_value: int = typer.Option(0, "--seed", help="Same seed, same data."),
    as_of: str | None = typer.Option(None, "--as-of", help="YYYY-MM-DD; default today UTC."),
    reset: bool = typer.Option(False, "--reset", help="Delete all existing rows first."),
    json_mode: bool = typer.Option(False, "--json", help="Print one JSON object with the counts."),
) -> None:
    """Seed a synthetic portfolio with realistic payment histories into an empty database."""
    day = _parse_as_of(as_of)
    started = time.monotonic()
    # Keyed by URL: get_engine() without one caches whichever database was configured first.
    engine = get_engine(get_settings().resolved_database_url)
    try:
        if show_progress(json_mode):
            with Progress(
                TextColumn("seeding customers"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as bar:
                task = bar.add_task("seed", total=customers)
                counts = seed_portfolio(
                    engine,
                    customers,
                    invoices,
                    seed_value,
                    day,
                    reset=reset,
                    progress=lambda n, _total: bar.advance(task, n),
                )
        else:
            counts = seed_portfolio(engine, customers, invoices, seed_value, day, reset=reset)
    except DunningError as exc:
        fail(str(exc))
    seconds = round(time.monotonic() - started, 2)
    if json_mode:
        emit_json({**counts, "seed": seed_value, "as_of": day.isoformat(), "seconds": seconds})
        return
    console.print(
        ", ".join(f"{v} {k}" for k, v in counts.items()) + f" in {seconds}s",
        highlight=False,
        soft_wrap=True,
    )

"""``dunning plan``, ``dunning forecast`` and ``dunning segments``: the policy from the shell."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dunning.cli.app import app, console, emit_json, fail, out, parse_instant
from dunning.core.portfolio import Portfolio
from dunning.errors import DunningError
from dunning.money import from_minor
from dunning.policy import Policy, forecast, load_policy, segment_frame
from dunning.policy.planner import FEATURE_COLUMNS
from dunning.portfolio import load_portfolio

if TYPE_CHECKING:
    from dunning.plan_stream import Chunk

_AS_OF = typer.Option(
    None, "--as-of", help="Instant to plan for (ISO 8601; naive means UTC). Default: now."
)
_JSON = typer.Option(False, "--json", help="One JSON object per line on stdout.")


def parse_as_of(text: str | None) -> datetime:
    """The instant of ``--as-of`` in UTC (now when omitted); exits with a message if invalid."""
    return parse_instant(text) or datetime.now(UTC)


def _inputs() -> tuple[Portfolio, Policy]:
    """The portfolio in the configured database and the policy; exits with the reason if either
    is unusable (database not migrated or unreachable, invalid policy file)."""
    from dunning.db import check_ready, get_engine

    try:
        policy = load_policy()
        engine = get_engine()
        check_ready(engine)
        return load_portfolio(engine), policy
    except DunningError as exc:
        fail(str(exc))


def _iso(value: Any) -> str:
    """``value`` (a UTC Timestamp or NaT) as ISO 8601 with Z, or "" for NaT."""
    if value is None or pd.isna(value):
        return ""
    return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain(values: dict[Any, Any]) -> dict[str, Any]:
    """``values`` with numpy/pandas scalars as JSON-friendly Python values (NaN as None)."""
    return {
        str(k): (None if pd.isna(v) else v.item() if hasattr(v, "item") else v)
        for k, v in values.items()
    }


def _table(title: str, frame: pd.DataFrame) -> None:
    """Print ``frame`` as a rich table on stdout."""
    table = Table(title=title)
    for col in frame.columns:
        table.add_column(str(col))
    cells = [[str(v) for v in row] for row in frame.itertuples(index=False)]
    for row in cells:
        table.add_row(*row)
    # Piped output has no terminal width: size the table to its content instead of truncating.
    widths = [max([len(str(c))] + [len(r[i]) for r in cells]) for i, c in enumerate(frame.columns)]
    width = sum(widths) + 3 * len(widths) + 1
    target = out if out.is_terminal or width <= out.width else Console(width=width, highlight=False)
    target.print(table)


@app.command("plan")
def plan_command(
    as_of: str | None = _AS_OF,
    all_lines: bool = typer.Option(False, "--all", help="Show defer and skip lines too."),
    json_mode: bool = _JSON,
) -> None:
    """Show the reminders the policy plans: one line per invoice and channel.

    Plans the portfolio in chunks of customers (dunning.plan_stream). ``--json`` writes each
    chunk's lines (JSON Lines, one object per line) as soon as it is planned: chunk by chunk in
    customer_id order, and within a chunk by invoice. The table waits for the whole plan and
    lists it by invoice, with a progress bar on stderr when stdout is a terminal.
    """
    from dunning.db import check_ready, get_engine
    from dunning.plan_stream import customer_chunks, customer_count, plan_chunks

    at = parse_as_of(as_of)
    try:
        policy = load_policy()
        engine = get_engine()
        check_ready(engine)
        chunks = customer_chunks(engine)
        if json_mode:
            _plan_json(plan_chunks(engine, at, policy, chunks), policy, all_lines)
            return
        with Progress(
            TextColumn("planning"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("customers"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not out.is_terminal,
        ) as bar:
            total = customer_count(engine) if out.is_terminal else None
            task = bar.add_task("planning", total=total)
            parts = []
            for chunk, part in plan_chunks(engine, at, policy, chunks):
                parts.append(part if all_lines else part.loc[part["action"] == "send"])
                bar.update(task, advance=chunk.customers)
    except DunningError as exc:
        fail(str(exc))
    # The chunks hold whole customers and so whole invoices: a stable sort by invoice gives
    # the order of the unchunked plan (by invoice, then channel).
    lines = pd.concat(parts, ignore_index=True).sort_values(
        "invoice_id", kind="stable", ignore_index=True
    )
    view = lines[_PLAN_COLS].astype(
        {c: str for c in _PLAN_COLS if c not in ("not_before", "days_overdue")}
    )
    view = view.assign(not_before=view["not_before"].map(_iso))
    if (lines["channel"] == "voice").any():
        from dunning.render.voice import language_notes

        # Calls say when they cannot speak the customer's language.
        view = view.assign(note=language_notes(lines["stage"], lines["channel"], lines["locale"]))
    _table(f"plan at {_iso(at)}", view)
    console.print(
        f"{len(view)} line(s)" + ("" if all_lines else " to send; --all shows defer/skip")
    )


_PLAN_COLS = [
    "invoice_number",
    "customer_id",
    "segment",
    "stage",
    "channel",
    "action",
    "reason",
    "not_before",
    "tone",
    "days_overdue",
]


def _plan_json(
    chunks: Iterator[tuple[Chunk, pd.DataFrame]], policy: Policy, all_lines: bool
) -> None:
    """Write each chunk's plan lines to stdout as JSON Lines as soon as it is planned.

    Each line: the table's columns, ``note`` when the policy calls anyone (why a call speaks
    English; "" on other lines), ``balance`` (decimal text), ``currency`` and the customer's
    payment-history features (FEATURE_COLUMNS; null when unknown)."""
    from dunning.plan_stream import instant_text, json_lines, json_values, money_text
    from dunning.policy.ladder import stage_table
    from dunning.render.voice import language_notes

    calls = bool(stage_table(policy).voice.any())
    stdout = sys.stdout
    for _chunk, lines in chunks:
        if not all_lines:
            lines = lines.loc[lines["action"] == "send"]
        if lines.empty:
            continue
        columns: dict[str, list[Any]] = {
            c: lines[c].astype(str).tolist()
            for c in _PLAN_COLS
            if c not in ("not_before", "days_overdue")
        }
        columns["not_before"] = instant_text(lines["not_before"])
        columns["days_overdue"] = lines["days_overdue"].tolist()
        columns = {c: columns[c] for c in _PLAN_COLS}
        if calls:
            columns["note"] = language_notes(lines["stage"], lines["channel"], lines["locale"])
        columns["balance"] = money_text(lines["balance_minor"], lines["currency"])
        columns["currency"] = lines["currency"].astype(str).tolist()
        for c in FEATURE_COLUMNS:
            columns[c] = json_values(lines[c])
        data = json_lines(columns)
        # Each chunk as soon as it is planned (and flushed): a reader sees the first lines
        # while the rest of the portfolio is still being loaded.
        buffer = getattr(stdout, "buffer", None)
        if buffer is not None:
            stdout.flush()
            buffer.write(data)
            buffer.flush()
        else:
            stdout.write(data.decode())
            stdout.flush()


@app.command("forecast")
def forecast_command(
    days: int = typer.Option(30, "--days", min=1, max=366, help="Days to simulate."),
    as_of: str | None = _AS_OF,
    json_mode: bool = _JSON,
) -> None:
    """Show how many reminders the policy will send each day if nothing is paid."""
    at = parse_as_of(as_of)
    portfolio, policy = _inputs()
    counts = forecast(portfolio, at, policy, days)
    counts = counts.assign(day=counts["day"].astype(str))
    if json_mode:
        for record in counts.to_dict("records"):
            emit_json(record)
        return
    if counts.empty:
        console.print(f"nothing to send in the {days} day(s) from {_iso(at)}")
        return
    label = counts["stage"] + "/" + counts["channel"] + " " + counts["count"].astype(str)
    per_day = (
        counts.assign(label=label)
        .groupby("day")
        .agg(total=("count", "sum"), reminders=("label", ", ".join))
        .reset_index()
    )
    _table(f"forecast: {days} day(s) from {_iso(at)}, nothing paid", per_day)


@app.command("segments")
def segments_command(
    as_of: str | None = _AS_OF,
    json_mode: bool = _JSON,
    snapshot: bool = typer.Option(
        False,
        "--snapshot",
        help="Also store the segmentation as the snapshot reminder runs read (what the "
        "segment-customers flow does); says what it stored on stderr.",
    ),
) -> None:
    """Show the customer segments with counts of customers, open invoices and open balances."""
    from dunning.segments.rules import segment_summary

    at = parse_as_of(as_of)
    portfolio, policy = _inputs()
    frame = segment_frame(portfolio, at, policy)
    if snapshot:
        from dunning.db import get_engine
        from dunning.segment_snapshot import write_snapshot

        written = write_snapshot(get_engine(), frame, at, policy)
        console.print(
            f"snapshot stored: {written.customers} customer(s) as of {_iso(at)}, "
            f"{written.moved} changed segment since the last snapshot"
        )
    summary = segment_summary(portfolio, frame, at)
    balance = [
        str(from_minor(int(m), c)) if c else "0"
        for m, c in zip(summary["open_balance_minor"], summary["currency"], strict=True)
    ]
    summary = summary.drop(columns="open_balance_minor").assign(open_balance=balance)
    if json_mode:
        for record in summary.to_dict("records"):
            emit_json(record)
        return
    _table(f"segments at {_iso(at)}", summary)

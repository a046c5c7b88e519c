"""``dunning plan``, ``dunning forecast`` and ``dunning segments``: the policy from the shell."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from dunning.cli.app import app, console, emit_json, fail, out, parse_instant
from dunning.core.portfolio import Portfolio
from dunning.errors import DunningError
from dunning.money import from_minor
from dunning.policy import Policy, forecast, load_policy, plan, segment_frame
from dunning.policy.planner import FEATURE_COLUMNS
from dunning.portfolio import load_portfolio

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
    """Show the reminders the policy plans: one line per invoice and channel."""
    at = parse_as_of(as_of)
    portfolio, policy = _inputs()
    lines = plan(portfolio, at, policy)
    if not all_lines:
        lines = lines.loc[lines["action"] == "send"]
    cols = [
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
    view = lines[cols].astype({c: str for c in cols if c not in ("not_before", "days_overdue")})
    view = view.assign(not_before=view["not_before"].map(_iso))
    if (lines["channel"] == "voice").any():
        from dunning.voice.script import language_notes

        # Calls say when they cannot speak the customer's language.
        view = view.assign(note=language_notes(lines["stage"], lines["channel"], lines["locale"]))
    if json_mode:
        # JSON lines also carry the balance and the customer's payment-history features.
        extra = lines[["currency", "balance_minor", *FEATURE_COLUMNS]]
        for record, more in zip(view.to_dict("records"), extra.to_dict("records"), strict=True):
            balance = from_minor(int(more.pop("balance_minor")), str(more["currency"]))
            emit_json(record | {"balance": str(balance)} | _plain(more))
        return
    _table(f"plan at {_iso(at)}", view)
    console.print(
        f"{len(view)} line(s)" + ("" if all_lines else " to send; --all shows defer/skip")
    )


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
def segments_command(as_of: str | None = _AS_OF, json_mode: bool = _JSON) -> None:
    """Show the customer segments with counts of customers, open invoices and open balances."""
    from dunning.segments.rules import segment_summary

    at = parse_as_of(as_of)
    portfolio, policy = _inputs()
    summary = segment_summary(portfolio, segment_frame(portfolio, at, policy), at)
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

"""The root Typer app and the helpers every command module shares.

Command modules live beside this file and register on ``app`` (or a sub-app below) at import;
``dunning.cli.main`` imports them all, so adding a module adds its commands.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    name="dunning",
    help="Payment reminders, the Prefect way: import, plan, send and track.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
import_app = typer.Typer(
    help="Import customers, invoices, payments and payment attempts.", no_args_is_help=True
)
fakes_app = typer.Typer(help="Local fake providers (Twilio, SendGrid).", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhook receiver.", no_args_is_help=True)
customer_app = typer.Typer(
    help="Customers: show the timeline, pause, resume, export, erase.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(fakes_app, name="fakes")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(customer_app, name="customer")

#: Human output (progress, tables) goes to stderr so stdout stays machine-readable.
console = Console(stderr=True)
out = Console()


def emit_json(obj: Any) -> None:
    """Print ``obj`` as one line of JSON on stdout."""
    sys.stdout.write(json.dumps(obj, default=str, separators=(",", ":")) + "\n")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    # Why escape and soft_wrap: the message quotes user input (a column named "[/]" is not
    # markup) and stays one line however long, so scripts can read it.
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def show_progress(json_mode: bool) -> bool:
    """Whether to draw progress bars: attached to a terminal and not in --json mode."""
    return not json_mode and console.is_terminal


def parse_instant(text: str | None) -> dt.datetime | None:
    """``--as-of`` as a UTC instant (no offset means UTC), None when omitted; exits with a
    message naming the option when it is not ISO 8601."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"--as-of {text!r} is not an ISO 8601 instant; use e.g. 2026-11-24T10:00:00Z")
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)

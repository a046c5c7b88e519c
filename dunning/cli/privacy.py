"""``dunning customer erase|export``: the data-protection requests of one customer."""

from __future__ import annotations

import json
import sys

import typer

from dunning.cli.app import console, customer_app, emit_json, fail
from dunning.config import get_settings
from dunning.db import get_engine
from dunning.db.models import utcnow
from dunning.errors import DunningError
from dunning.privacy import erase_customer, export_customer

IdArg = typer.Argument(..., help="The customer_id, as in the customers import.")


@customer_app.command("erase")
def erase(
    customer_id: str = IdArg,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    json_mode: bool = typer.Option(False, "--json", help="Print one JSON object with the counts."),
) -> None:
    """Erase a customer's personal data; invoices, payments and ledger counts stay."""
    if not yes:
        if json_mode or not sys.stdin.isatty():
            fail(f"erasing {customer_id!r} cannot be undone: pass --yes to confirm")
        typer.confirm(
            f"Erase the personal data of customer {customer_id!r}? This cannot be undone",
            abort=True,
            err=True,
        )
    # Keyed by URL: get_engine() without one caches whichever database was configured first.
    engine = get_engine(get_settings().resolved_database_url)
    try:
        report = erase_customer(engine, customer_id, utcnow())
    except DunningError as exc:
        fail(str(exc))
    if json_mode:
        emit_json({"ok": True, **report.as_dict()})
        return
    console.print(
        f"customer {customer_id} erased: {report.reminders} reminder(s) and "
        f"{report.inbound_messages} inbound message(s) cleared, {report.cancelled_reminders} "
        f"planned reminder(s) cancelled, {report.webhook_payloads} webhook payload(s) deleted",
        highlight=False,
        soft_wrap=True,
    )


@customer_app.command("export")
def export(customer_id: str = IdArg) -> None:
    """Print everything stored about a customer as one JSON document."""
    engine = get_engine(get_settings().resolved_database_url)
    try:
        document = export_customer(engine, customer_id)
    except DunningError as exc:
        fail(str(exc))
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")

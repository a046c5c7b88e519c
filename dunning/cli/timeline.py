"""``dunning customer show ID [--json]``: a customer's invoices and timeline."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from dunning.cli.app import customer_app, emit_json, fail, out


def _day(value: Any) -> str:
    return value.isoformat()[:16].replace("T", " ") if value is not None else "-"


@customer_app.command("show")
def show(
    customer_id: Annotated[str, typer.Argument(help="The customer id.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """A customer's invoices with balances, then everything that happened, oldest first:
    reminders and delivery events, replies, payments, promises, operator actions and notes."""
    from dunning.db import check_ready, get_engine
    from dunning.operations.base import Refused
    from dunning.operations.timeline import as_json, customer_timeline

    engine = get_engine()
    check_ready(engine)
    try:
        view = customer_timeline(engine, customer_id)
    except Refused as exc:
        fail(str(exc))
    if json_out:
        emit_json(as_json(view))
        return
    c = view["customer"]
    flags = [f for f in ("email_opt_out", "sms_opt_out") if c[f]]
    if c["paused_until"]:
        flags.append(f"paused until {c['paused_until']}")
    out.print(
        f"[bold]{c['customer_id']}[/] {c['name'] or ''}  {c['email']}  {c['phone']}  "
        f"{c['locale']} {c['timezone']}" + (f"  ({', '.join(flags)})" if flags else ""),
        highlight=False,
    )
    invoices = Table(
        "invoice", "due", "amount", "paid", "balance", "status", "hold", title="invoices"
    )
    for inv in view["invoices"]:
        hold = []
        if inv["paused_until"]:
            hold.append(f"paused until {inv['paused_until']}")
        if inv["promise_to_pay_on"]:
            hold.append(f"promise by {inv['promise_to_pay_on']}")
        invoices.add_row(
            inv["invoice_number"],
            str(inv["due_on"]),
            f"{inv['amount']} {inv['currency']}",
            str(inv["paid"]),
            str(inv["balance"]),
            inv["status"],
            ", ".join(hold),
        )
    out.print(invoices)
    timeline = Table("when (UTC)", "invoice", "what", title="timeline")
    for event in view["timeline"]:
        timeline.add_row(_day(event["at"]), event["invoice_number"] or "-", event["summary"])
    out.print(timeline if view["timeline"] else "nothing happened yet")

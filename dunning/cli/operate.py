"""Operator actions from the shell: ``dunning invoice|customer|reminder|inbox ...``.

Every command goes through ``dunning.operations.actions.perform`` (the same code as the
operator-action flow), prints what changed and leaves an audit row; a refusal exits 1 with
the reason and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from dunning.cli.app import app, customer_app, emit_json, fail, out

invoice_app = typer.Typer(
    help="Operator actions on an invoice (pause, dispute, promise, paid).", no_args_is_help=True
)
reminder_app = typer.Typer(help="Operator actions on a reminder (resolve).", no_args_is_help=True)
inbox_app = typer.Typer(help="The webhook inbox (retry rows in error).", no_args_is_help=True)
app.add_typer(invoice_app, name="invoice")
app.add_typer(reminder_app, name="reminder")
app.add_typer(inbox_app, name="inbox")

Reason = Annotated[str | None, typer.Option("--reason", help="Why (kept in the audit trail).")]
Json = Annotated[bool, typer.Option("--json", help="Print the change as one JSON object.")]
Number = Annotated[str, typer.Argument(help="The invoice number.")]


def parse_day(text: str | None, option: str) -> dt.date | None:
    """``text`` as a date (YYYY-MM-DD), None when omitted; exits naming ``option`` if invalid."""
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        fail(f"{option} {text!r} is not a date; use YYYY-MM-DD, e.g. {option} 2026-12-15")


def act(action: str, json_out: bool, **fields: object) -> None:
    """Perform ``action`` as the OS user and print what changed (or the refusal, exit 1)."""
    from dunning.db import check_ready, get_engine
    from dunning.operations.actions import ActionRequest, Refused, perform
    from dunning.operations.audit import Actor

    engine = get_engine()
    check_ready(engine)
    try:
        result = perform(engine, ActionRequest(action, **fields), Actor.os_user())  # type: ignore[arg-type]
    except Refused as exc:
        fail(str(exc))
    if json_out:
        emit_json(result.as_dict())
    else:
        out.print(result.message(), highlight=False, soft_wrap=True)


@invoice_app.command("pause")
def invoice_pause(
    number: Number,
    until: Annotated[str, typer.Option("--until", help="No reminders before this date.")],
    reason: Reason = None,
    json_out: Json = False,
) -> None:
    """Pause reminders for an invoice until a date (sources cannot undo it)."""
    act("invoice_pause", json_out, invoice=number, date=parse_day(until, "--until"), reason=reason)


@invoice_app.command("resume")
def invoice_resume(number: Number, reason: Reason = None, json_out: Json = False) -> None:
    """End an invoice's pause now."""
    act("invoice_resume", json_out, invoice=number, reason=reason)


@invoice_app.command("dispute")
def invoice_dispute(number: Number, reason: Reason = None, json_out: Json = False) -> None:
    """Mark an invoice disputed: no reminders until undisputed (sources cannot undo it)."""
    act("invoice_dispute", json_out, invoice=number, reason=reason)


@invoice_app.command("undispute")
def invoice_undispute(number: Number, reason: Reason = None, json_out: Json = False) -> None:
    """End a dispute: the invoice is open again (or paid when nothing is due)."""
    act("invoice_undispute", json_out, invoice=number, reason=reason)


@invoice_app.command("promise")
def invoice_promise(
    number: Number,
    on: Annotated[str, typer.Option("--on", help="The date the customer promised to pay by.")],
    amount: Annotated[
        str | None,
        typer.Option(
            "--amount", help="The promised amount in the invoice's currency (default: all)."
        ),
    ] = None,
    reason: Reason = None,
    json_out: Json = False,
) -> None:
    """Record a promise to pay: no reminders until the date, then promise_broken if unpaid."""
    act(
        "invoice_promise",
        json_out,
        invoice=number,
        date=parse_day(on, "--on"),
        amount=amount,
        reason=reason,
    )


@invoice_app.command("paid")
def invoice_paid(
    number: Number,
    amount: Annotated[str, typer.Option("--amount", help="Amount received, invoice currency.")],
    on: Annotated[
        str | None,
        typer.Option("--on", help="Date received (YYYY-MM-DD, midnight UTC; default now)."),
    ] = None,
    reason: Reason = None,
    json_out: Json = False,
) -> None:
    """Record a payment received outside any source (bank transfer, cheque)."""
    act(
        "invoice_paid",
        json_out,
        invoice=number,
        amount=amount,
        date=parse_day(on, "--on"),
        reason=reason,
    )


@customer_app.command("pause")
def customer_pause(
    customer_id: Annotated[str, typer.Argument(help="The customer id.")],
    until: Annotated[str, typer.Option("--until", help="No reminders before this date.")],
    reason: Reason = None,
    json_out: Json = False,
) -> None:
    """Pause every reminder to a customer until a date (sources cannot undo it)."""
    act(
        "customer_pause",
        json_out,
        customer=customer_id,
        date=parse_day(until, "--until"),
        reason=reason,
    )


@customer_app.command("resume")
def customer_resume(
    customer_id: Annotated[str, typer.Argument(help="The customer id.")],
    reason: Reason = None,
    json_out: Json = False,
) -> None:
    """End a customer's pause now."""
    act("customer_resume", json_out, customer=customer_id, reason=reason)


@reminder_app.command("resolve")
def reminder_resolve(
    reminder_id: Annotated[int, typer.Argument(help="The reminder id (dunning ledger).")],
    as_: Annotated[
        str,
        typer.Option("--as", help="sent: it went out (the stage is done); requeue: send it again."),
    ],
    reason: Reason = None,
    json_out: Json = False,
) -> None:
    """Settle an unknown reminder, or a claim whose lease expired, as sent or requeued."""
    if as_ not in ("sent", "requeue"):
        fail(f"--as {as_!r} is not sent or requeue")
    act(f"reminder_resolve_{as_}", json_out, record_id=reminder_id, reason=reason)


@inbox_app.command("retry")
def inbox_retry(
    inbox_id: Annotated[int | None, typer.Argument(help="The inbox row id.")] = None,
    all_errors: Annotated[bool, typer.Option("--all-errors", help="Every row in error.")] = False,
    reason: Reason = None,
    json_out: Json = False,
) -> None:
    """Apply inbox rows in error again now (e.g. after importing the invoice they named)."""
    if (inbox_id is None) == (not all_errors):
        fail("give an inbox row id or --all-errors (one of them)")
    act("inbox_retry", json_out, record_id=inbox_id, all_errors=all_errors, reason=reason)

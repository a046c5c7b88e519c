"""``dunning webhooks serve|apply``, ``dunning replies`` and ``dunning metrics``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from dunning.cli.app import app, console, emit_json, fail, out, parse_instant, webhooks_app
from dunning.config import get_settings
from dunning.db import check_ready, get_engine


@webhooks_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8080,
) -> None:
    """Receive SendGrid, Twilio and Stripe webhooks into the inbox (uvicorn)."""
    import uvicorn

    from dunning.channels.twilio_config import twilio_configured
    from dunning.webhooks import create_app

    engine = get_engine()
    check_ready(engine)
    settings = get_settings().webhooks
    application = create_app(settings, engine)
    missing = [
        name
        for name, value in (
            ("DUNNING_SENDGRID_WEBHOOK_PUBLIC_KEY", settings.sendgrid_webhook_public_key),
            ("DUNNING_TWILIO_AUTH_TOKEN", twilio_configured()),
            ("DUNNING_STRIPE_WEBHOOK_SECRET", settings.stripe_webhook_secret),
        )
        if not value
    ]
    if missing:
        console.print(f"not configured (those endpoints answer 503): {', '.join(missing)}")
    from dunning.config.channels import unsubscribe_problems

    for problem in unsubscribe_problems(get_settings().channels):
        console.print(f"one-click unsubscribe: {problem}")
    uvicorn.run(application, host=host, port=port, log_level="info")


@webhooks_app.command("apply")
def apply(
    limit: Annotated[int | None, typer.Option(help="Apply at most this many events.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Apply pending inbox events to the ledger now (what the track_responses flow does)."""
    from dunning.tracking import apply_inbox
    from dunning.tracking.apply import retry_policy

    engine = get_engine()
    check_ready(engine)
    settings = get_settings().webhooks
    counts = apply_inbox(
        engine, limit, settings.reply_pause_days, retry=retry_policy(settings)
    ).as_dict()
    if json_out:
        emit_json(counts)
        return
    for kind, count in counts.items():
        out.print(f"{kind}: {count}")
    if not counts:
        out.print("inbox: nothing pending")


replies_app = typer.Typer(
    help="Inbound SMS replies: list them, acknowledge one for review.", invoke_without_command=True
)
app.add_typer(replies_app, name="replies")


@replies_app.callback()
def replies(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="Show the latest N replies.", min=1)] = 50,
    open_only: Annotated[
        bool,
        typer.Option(
            "--open", help="Only replies waiting for review (free text, PAID), not acknowledged."
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """List inbound SMS replies for operators (phone numbers masked)."""
    if ctx.invoked_subcommand is not None:
        return
    from dunning.tracking.replies import list_replies

    engine = get_engine()
    check_ready(engine)
    rows = list_replies(engine, limit, open_only=open_only)
    if json_out:
        emit_json(rows)
        return
    table = Table("id", "received", "from", "customer", "invoice", "keyword", "message")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["received_at"][:16],
            r["from"],
            r["customer_id"] or "-",
            r["invoice_number"] or "-",
            r["keyword"] or "-",
            r["body"] or "",
        )
    out.print(table if rows else "no open replies" if open_only else "no replies yet")


@replies_app.command("ack")
def replies_ack(
    reply_id: Annotated[int, typer.Argument(help="The reply id (dunning replies --open).")],
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="What was done about it (kept in the audit trail)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Acknowledge a reply flagged for review: it leaves ``dunning replies --open``."""
    from dunning.cli.operate import act

    act("reply_ack", json_out, record_id=reply_id, reason=reason)


@app.command("metrics")
def metrics(
    by: Annotated[
        list[str] | None,
        typer.Option(
            help="Group by stage, channel, provider, segment, template, week or run (repeatable)."
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only reminders sent on/after YYYY-MM-DD.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Instant the paid-within windows are measured at (default now)."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Delivery, bounce, open, click, reply and paid-within-3/7/14-days rates.

    Delivery-side rates leave out the outbox and SMTP (no delivery reports); a paid-within
    rate counts only reminders whose window has elapsed, with their number n ("n/a" if none).
    """
    from dunning.tracking.metrics import DIMENSIONS, compute_metrics, percent, to_records

    start = None
    if since:
        try:
            start = dt.datetime.combine(dt.date.fromisoformat(since), dt.time(), dt.UTC)
        except ValueError:
            fail(f"--since {since!r} is not a date; use YYYY-MM-DD, e.g. --since 2026-01-31")
    at = parse_instant(as_of)
    engine = get_engine()
    check_ready(engine)
    try:
        table = compute_metrics(engine, by=by or ["stage", "channel"], since=start, as_of=at)
    except ValueError as exc:
        fail(f"--by: {exc}")
    rows = to_records(table)
    if json_out:
        emit_json(rows)
        return
    if not rows:
        out.print("no reminders sent yet")
        return
    shown = [
        c
        for c in rows[0]
        if c in (*DIMENSIONS, "scope", "sent", "tracked") or c.endswith(("_rate", "_n"))
    ]
    grid = Table(*shown)
    for row in rows:
        grid.add_row(
            *(
                percent(row[c]) if c.endswith("rate") else "-" if row[c] is None else str(row[c])
                for c in shown
            )
        )
    out.print(grid)

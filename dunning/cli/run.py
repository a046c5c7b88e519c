"""``dunning run`` (the reminder flow) and ``dunning ledger`` (what the ledger holds)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import typer
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from dunning.cli.app import app, console, emit_json, fail, out, parse_instant, show_progress
from dunning.config import get_settings
from dunning.core.status import WITH_REASON
from dunning.db import check_ready, get_engine, redact_url
from dunning.db.models import Invoice, Reminder


@app.command("run")
def run(
    as_of: str = typer.Option(None, "--as-of", help="Act as of this ISO instant (default now)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan and report; send nothing."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object; no progress."),
    channel: list[str] = typer.Option(None, "--channel", help="Only this channel (repeatable)."),
    segment: list[str] = typer.Option(None, "--segment", help="Only this segment (repeatable)."),
    stage: list[str] = typer.Option(None, "--stage", help="Only this stage (repeatable)."),
    invoice: list[str] = typer.Option(None, "--invoice", help="Only this invoice (repeatable)."),
    batch_size: int = typer.Option(
        None,
        "--batch-size",
        help="Reminders per delivery task (default: one task per invoice "
        "for small runs, batches for large ones).",
    ),
    max_messages: int = typer.Option(None, "--max-messages", help="Send at most this many."),
    policy: Path = typer.Option(None, "--policy", help="Policy file (TOML/YAML)."),
    shards: int = typer.Option(
        1,
        "--shards",
        help="Split the run by customer into this many shards (1-256); "
        "without --shard they run one after another in this process and the report sums them.",
    ),
    shard: int = typer.Option(
        None, "--shard", help="Handle only this shard (0 to --shards minus 1)."
    ),
) -> None:
    """Run the payment-reminders flow (ephemeral Prefect server when PREFECT_API_URL is unset)."""
    from dunning.params import RunParameters

    try:
        params = RunParameters.model_validate(
            {
                "as_of": parse_instant(as_of),
                "dry_run": dry_run,
                "channels": channel or (),
                "segments": segment or (),
                "stages": stage or (),
                "invoice_numbers": invoice or (),
                "batch_size": batch_size,
                "max_messages": max_messages,
                "policy_path": policy,
                "shards": shards,
                "shard": shard,
            }
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"]
            for e in exc.errors()
        )
        fail(f"invalid run parameters: {problems}")
    from dunning.channels.preflight import ALL_CHANNELS, check_provider_config

    # Before anything starts (the database check, a Prefect server), in a dry run too: a
    # provider forced without credentials is one line here, not a traceback from a flow run.
    # Only the channels this run can use: a policy that places no calls needs no voice setup.
    from dunning.errors import PolicyError
    from dunning.policy import load_policy

    try:
        used = load_policy(Path(params.policy_path) if params.policy_path else None).channels
    except PolicyError as exc:
        fail(str(exc))
    wanted = [str(c) for c in params.channels] or list(ALL_CHANNELS)
    check_provider_config([c for c in wanted if c in used])
    check_ready(get_engine())
    if not params.dry_run and "email" in ([str(c) for c in params.channels or []] or ["email"]):
        from dunning.channels import check_email_compliance

        check_email_compliance()  # before Prefect starts: ConfigError names the setting
    from dunning.entrypoints import PAYMENT_REMINDERS, load_flow
    from dunning.report import RunReport

    # By its entrypoint string (prefect.yaml's in a checkout): the CLI does not import flows.
    payment_reminders = load_flow(*PAYMENT_REMINDERS)

    if not json_out:
        console.print("[dim]running the payment-reminders flow…[/]")
    from dunning.cli.run_progress import delivery_bar

    # On a terminal a bar follows the delivery batches; --json (or a pipe) stays quiet.
    with delivery_bar(console) if show_progress(json_out) else nullcontext():
        state = payment_reminders(**params.model_dump(), return_state=True)
    report = state.result(raise_on_failure=False)
    if isinstance(report, OperationalError):
        fail(
            f"the run lost the database {redact_url(get_settings().resolved_database_url)} "
            f"({type(report.orig).__name__}); check DUNNING_DATABASE_URL and that the server "
            "is running, then run again — claimed reminders are settled by the next run"
        )
    if isinstance(report, BaseException):
        fail(f"the run failed: {report}")
    if not isinstance(report, RunReport):
        fail(f"the run ended {state.name} without a report: {state.message or ''}")
    summary = report.to_json()
    if json_out:
        emit_json(summary)
    else:
        _print_summary(summary)


def _print_summary(summary: dict) -> None:  # type: ignore[type-arg]
    from rich.table import Table

    c = summary["counts"]
    title = "Dry run" if summary["dry_run"] else "Reminder run"
    out.print(f"[bold]{title}[/] as of {summary['as_of']}  (flow run {summary['flow_run_id']})")
    out.print(
        f"sent {c['sent']}  failed {c['failed']}  skipped {c['skipped']}  "
        f"deferred {c['deferred']}  pending {c['pending']}  unknown {c['unknown']}"
        + (f"  planned {c['planned']}" if summary["dry_run"] else "")
    )
    for dim in ("by_channel", "by_stage"):
        table = Table(title=dim.replace("_", " "))
        table.add_column(dim.removeprefix("by_"))
        actions = ["sent", "failed", "skipped", "deferred", "planned"]
        for a in actions:
            table.add_column(a, justify="right")
        for key, row in sorted(summary[dim].items()):
            table.add_row(key, *(str(row.get(a, 0)) for a in actions))
        out.print(table)
    if summary["skip_reasons"]:
        out.print(
            "top skip/defer reasons: "
            + ", ".join(f"{k or '-'} {v}" for k, v in summary["skip_reasons"].items())
        )
    for shard in summary.get("shards", []):
        sent = (shard["counts"] or {}).get("sent", 0)
        out.print(
            f"shard {shard['shard']}: {shard['state'].lower()}, sent {sent} "
            f"(flow run {shard['flow_run_name'] or shard['flow_run_id']})"
        )


@app.command("ledger")
def ledger_cmd(
    json_out: bool = typer.Option(False, "--json", help="One JSON object per line."),
    invoice: str = typer.Option(None, "--invoice", help="Only this invoice number."),
    status: str = typer.Option(None, "--status", help="Only rows in this status."),
    limit: int = typer.Option(None, "--limit", help="At most this many rows."),
) -> None:
    """List the reminders ledger: invoice, stage, channel, status, attempts, provider id, error."""
    engine = get_engine()
    check_ready(engine)
    q = (
        select(
            Invoice.invoice_number,
            Reminder.stage,
            Reminder.channel,
            Reminder.status,
            Reminder.attempts,
            Reminder.provider_message_id,
            Reminder.error_code,
            Reminder.reason,
            Reminder.sent_at,
        )
        .join(Invoice, Invoice.id == Reminder.invoice_id)
        .order_by(Reminder.id)
    )
    if invoice:
        q = q.where(Invoice.invoice_number == invoice)
    if status:
        q = q.where(Reminder.status == status)
    if limit:
        q = q.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    if json_out:
        for r in rows:
            error = None
            if r.error_code or (r.status in WITH_REASON and r.reason):
                error = ": ".join(x for x in (r.error_code, r.reason) if x)
            emit_json(
                {
                    "invoice_number": r.invoice_number,
                    "stage": r.stage,
                    "channel": r.channel,
                    "status": r.status,
                    "attempts": r.attempts,
                    "provider_message_id": r.provider_message_id,
                    "error": error,
                    "sent_at": r.sent_at.isoformat() if r.sent_at else None,
                }
            )
        return
    from rich.table import Table

    table = Table(title=f"ledger ({len(rows)} rows)")
    for col in ("invoice", "stage", "channel", "status", "attempts", "provider id", "error"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r.invoice_number,
            r.stage,
            r.channel,
            r.status,
            str(r.attempts),
            r.provider_message_id or "",
            ": ".join(x for x in (r.error_code, r.reason) if x),
        )
    out.print(table)

"""``dunning preview``: render what would be sent for one invoice, without sending anything."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import Engine, func, select

from dunning.channels.base import OutboundMessage, ReminderData
from dunning.cli.app import app, console, emit_json, fail, out
from dunning.cli.policy import parse_as_of
from dunning.cli.preview_voice import show_call
from dunning.config import get_settings
from dunning.db.models import Customer, Invoice, Payment, Reminder
from dunning.errors import DunningError
from dunning.ledger import reminder_data
from dunning.policy import Ladder, Policy, Stage, load_policy
from dunning.policy.model import PAYMENT_FAILED, PROMISE_BROKEN
from dunning.render import base_stage, compose
from dunning.sms import count_segments


def suggest_stage(ladder: Ladder, days_overdue: int) -> Stage:
    """The highest stage of ``ladder`` reached ``days_overdue`` days after the due date (the
    first stage when none is reached yet)."""
    reached = [s for s in ladder.stages if s.offset_days <= days_overdue]
    return reached[-1] if reached else ladder.stages[0]


def _tone(ladder: Ladder, stage: str) -> str | None:
    policy_stage = ladder.stage(base_stage(stage))
    return policy_stage.tone if policy_stage else None


def known_stages(policy: Policy) -> list[str]:
    """Stage names a preview can render under ``policy`` (the ladder plus the extra stages)."""
    return [*policy.stage_order, PAYMENT_FAILED, PROMISE_BROKEN]


def load_preview(
    engine: Engine,
    policy: Policy,
    invoice_number: str,
    stage: str | None,
    channels: list[str],
    as_of: dt.datetime,
) -> list[ReminderData]:
    """The ReminderData of ``invoice_number`` for each of ``channels`` at ``as_of``; the stage
    is ``stage`` or the one the days overdue suggest under the policy's default ladder."""
    from dunning.db import session_scope

    with session_scope(engine) as session:
        row = session.execute(
            select(Invoice, Customer)
            .join(Customer, Customer.customer_id == Invoice.customer_id)
            .where(Invoice.invoice_number == invoice_number)
        ).first()
        if row is None:
            raise DunningError(f"invoice {invoice_number!r} is not in the database; import it "
                               "with `dunning import invoices` or check the number")
        invoice, customer = row
        paid = session.scalar(
            select(func.coalesce(func.sum(Payment.amount), 0)).where(
                Payment.invoice_id == invoice.id)
        )
        days = (as_of.astimezone(ZoneInfo(customer.timezone)).date() - invoice.due_on).days
        ladder = policy.ladder
        chosen = stage or suggest_stage(ladder, days).name
        extras = {PAYMENT_FAILED: policy.payment_failed, PROMISE_BROKEN: policy.promise_broken}
        tone = extras[chosen].tone if chosen in extras else _tone(ladder, chosen)
        ids = dict(
            session.execute(
                select(Reminder.channel, Reminder.id).where(
                    Reminder.invoice_id == invoice.id, Reminder.stage == chosen)
            ).tuples().all()
        )
        return [
            reminder_data(
                reminder_id=ids.get(channel, 0),  # 0: no ledger row yet
                invoice_id=invoice.id,
                invoice_number=invoice.invoice_number,
                customer_id=customer.customer_id,
                stage=chosen,
                channel=channel,
                segment=None,
                tone=tone,
                customer_name=customer.name,
                email=customer.email,
                phone=customer.phone,
                locale=customer.locale,
                timezone=customer.timezone,
                country=customer.country,
                currency=invoice.currency,
                amount=invoice.amount,
                paid=paid,
                due_on=invoice.due_on,
                payment_link=invoice.payment_link,
                promise_to_pay_on=invoice.promise_to_pay_on,
                promise_amount=invoice.promise_amount,
                promise_made_on=invoice.promise_made_on,
                as_of=as_of,
            )
            for channel in channels
        ]


def _as_dict(message: OutboundMessage, stage: str, html_path: Path | None) -> dict[str, Any]:
    count = count_segments(message.text) if message.channel == "sms" else None
    return {
        "channel": message.channel,
        "stage": stage,
        "template": message.template_key,
        "locale": message.locale,
        "to": message.to,
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "html_path": str(html_path) if html_path else None,
        "headers": message.headers,
        "sms_segments": count.segments if count else None,
        "sms_encoding": count.encoding if count else None,
        "warnings": message.warnings,
    }


def _write_html(message: OutboundMessage, invoice: str, stage: str) -> Path | None:
    if not message.html:
        return None
    directory = get_settings().home / "preview"
    directory.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in invoice)
    path = directory / f"{safe}-{stage}.html"
    path.write_text(message.html, encoding="utf-8")
    return path


@app.command("preview")
def preview(
    invoice: str = typer.Option(..., "--invoice", help="Invoice number to render."),
    stage: str | None = typer.Option(
        None, "--stage", help="Stage to render; default: the one the days overdue suggest."),
    channel: str | None = typer.Option(
        None, "--channel", help="email, sms or voice (prints the call's TwiML); default: "
        "email and sms."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Instant the days overdue are counted at (ISO 8601)."),
    html: bool = typer.Option(False, "--html", help="Print the HTML part too."),
    json_mode: bool = typer.Option(False, "--json", help="One JSON object per message."),
) -> None:
    """Render the reminder(s) that would be sent for invoice number N (nothing is sent)."""
    from dunning.db import get_engine

    if channel not in (None, "email", "sms", "voice"):
        fail(f"--channel {channel!r} is not a channel; use email, sms or voice")
    try:
        policy = load_policy()
    except DunningError as exc:
        fail(str(exc))
    if stage is not None and base_stage(stage) not in known_stages(policy):
        fail(f"--stage {stage!r} is not a stage of the policy; use one of "
             f"{', '.join(known_stages(policy))} (or a repeat such as final_notice_r2)")
    when = parse_as_of(as_of)
    channels = [channel] if channel else ["email", "sms"]
    try:
        items = load_preview(get_engine(), policy, invoice, stage, channels, when)
    except DunningError as exc:
        fail(str(exc))
    for data in items:
        address = data.email if data.channel == "email" else data.phone
        if not address:
            if channel:
                fail(f"customer {data.customer_id} of invoice {invoice} has no "
                     f"{'email address' if channel == 'email' else 'phone number'}")
            console.print(f"[yellow]no {data.channel} address for customer "
                          f"{data.customer_id}: {data.channel} skipped[/]")
            continue
        if data.channel == "voice":
            try:
                show_call(get_engine(), data, json_mode)
            except DunningError as exc:
                fail(str(exc))
            continue
        try:
            message = compose(data)
        except DunningError as exc:
            fail(str(exc))
        path = _write_html(message, invoice, data.stage)
        if json_mode:
            emit_json(_as_dict(message, data.stage, path))
            continue
        out.rule(f"{data.channel} · {message.template_key} · stage {data.stage}")
        out.print(f"To: {message.to}", highlight=False, markup=False, soft_wrap=True)
        if message.subject:
            out.print(f"Subject: {message.subject}", highlight=False, markup=False, soft_wrap=True)
        out.print("")
        out.print(message.text, highlight=False, markup=False, soft_wrap=True)
        if message.channel == "sms":
            count = count_segments(message.text)
            out.print(f"[{count.segments} {count.encoding} segment(s)]", highlight=False,
                      markup=False)
        if path:
            out.print(f"HTML: {path}", highlight=False, markup=False, soft_wrap=True)
        if html and message.html:
            out.print(message.html, highlight=False, markup=False, soft_wrap=True)
        for warning in message.warnings:
            console.print(f"[yellow]warning:[/] {warning}")

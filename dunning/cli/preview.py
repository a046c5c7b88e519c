"""``dunning preview``: render what would be sent for one invoice, without sending anything.

Under a policy with ``consolidate = "customer"`` (for the invoice's segment) the message shown
is the customer's one message: every invoice of theirs that travels with this one on the
channel, worded by the most advanced stage among them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import typer
from sqlalchemy import Engine, func, select

from dunning.cli.app import app, console, emit_json, fail, out
from dunning.cli.policy import parse_as_of
from dunning.cli.preview_voice import show_call
from dunning.config import get_settings
from dunning.core.messages import OutboundMessage, ReminderData
from dunning.db.models import Customer, Invoice, Payment, Reminder
from dunning.errors import DunningError
from dunning.ledger import reminder_data
from dunning.policy import Policy, load_policy
from dunning.policy.ladder import stage_reached
from dunning.policy.model import base_stage, repeat_stage
from dunning.render import compose, compose_group
from dunning.sms import count_segments


def plan_for_invoice(
    engine: Engine, policy: Policy, invoice_number: str, as_of: dt.datetime
) -> dict[str, dict[str, Any]]:
    """The plan lines of ``invoice_number`` at ``as_of`` by channel, from the same planner
    ``dunning plan`` and the flow use (its customer's whole history is loaded, so segment,
    stage and reasons are the ones a run would see); empty when the invoice is not planned
    (no stage reached yet, or settled)."""
    from dunning.policy import plan
    from dunning.portfolio import load_portfolio

    portfolio = load_portfolio(engine, invoice_numbers=[invoice_number])
    lines = plan(portfolio, as_of, policy)
    lines = lines.loc[lines["invoice_number"] == invoice_number]
    return {str(r["channel"]): {str(k): v for k, v in r.items()} for r in lines.to_dict("records")}


def customer_lines(
    engine: Engine, policy: Policy, invoice_number: str, as_of: dt.datetime
) -> list[dict[str, Any]]:
    """Every plan line at ``as_of`` of the customer of ``invoice_number`` (all their invoices,
    every channel), from the same planner a run uses."""
    from dunning.policy import plan
    from dunning.portfolio import load_portfolio

    customer = select(Invoice.customer_id).where(Invoice.invoice_number == invoice_number)
    with engine.connect() as conn:
        numbers = list(
            conn.scalars(
                select(Invoice.invoice_number).where(
                    Invoice.customer_id == customer.scalar_subquery()
                )
            )
        )
    if not numbers:
        return []
    lines = plan(load_portfolio(engine, invoice_numbers=numbers), as_of, policy)
    return [{str(k): v for k, v in r.items()} for r in lines.to_dict("records")]


def travelling_with(
    lines: list[dict[str, Any]], invoice_number: str, channel: str
) -> list[dict[str, Any]]:
    """The plan lines whose reminders share one message with ``invoice_number``'s on
    ``channel`` in one-message-per-customer mode: the customer's lines on that channel with
    the same action (sent now together, or deferred together), this invoice's first; empty
    when this invoice has no line there."""
    own = next(
        (r for r in lines if r["invoice_number"] == invoice_number and r["channel"] == channel),
        None,
    )
    if own is None or own["action"] == "skip":
        return []
    others = [
        r
        for r in lines
        if r["channel"] == channel
        and r["action"] == own["action"]
        and r["invoice_number"] != invoice_number
    ]
    return [own, *others]


def verdict(line: dict[str, Any] | None) -> str:
    """What a run would do with a plan line, in words: "send now", "would not be sent:
    <reason>" or "deferred until <UTC instant>: <reason>"."""
    if line is None:
        return "not in the plan: no stage is reached yet, or the invoice is settled"
    action = str(line["action"])
    if action == "send":
        return "send now"
    if action == "skip":
        return f"would not be sent: {line['reason']}"
    when = pd.Timestamp(line["not_before"]).isoformat()
    return f"deferred until {when}: {line['reason']}"


def load_preview(
    engine: Engine,
    policy: Policy,
    invoice_number: str,
    stage: str | None,
    channels: list[str],
    as_of: dt.datetime,
    *,
    tone: str | None = None,
    segment: str | None = None,
) -> list[ReminderData]:
    """The ReminderData of ``invoice_number`` for each of ``channels`` at ``as_of``; the stage
    is ``stage`` or the one the days overdue reach on the policy's default ladder
    (``stage_reached``); ``tone``/``segment`` (from a plan line) override the default
    ladder's tone."""
    from dunning.db import session_scope

    with session_scope(engine) as session:
        row = session.execute(
            select(Invoice, Customer)
            .join(Customer, Customer.customer_id == Invoice.customer_id)
            .where(Invoice.invoice_number == invoice_number)
        ).first()
        if row is None:
            raise DunningError(
                f"invoice {invoice_number!r} is not in the database; import it "
                "with `dunning import invoices` or check the number"
            )
        invoice, customer = row
        paid = session.scalar(
            select(func.coalesce(func.sum(Payment.amount), 0)).where(
                Payment.invoice_id == invoice.id
            )
        )
        days = (as_of.astimezone(ZoneInfo(customer.timezone)).date() - invoice.due_on).days
        chosen = stage or stage_reached(policy, days)
        tone = tone or policy.tone_for(chosen)
        ids = dict(
            session.execute(
                select(Reminder.channel, Reminder.id).where(
                    Reminder.invoice_id == invoice.id, Reminder.stage == chosen
                )
            )
            .tuples()
            .all()
        )
        return [
            reminder_data(
                reminder_id=ids.get(channel, 0),  # 0: no ledger row yet
                invoice_id=invoice.id,
                invoice_number=invoice.invoice_number,
                customer_id=customer.customer_id,
                stage=chosen,
                channel=channel,
                segment=segment,
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


def _plan_fields(planned: dict[str, dict[str, Any]], channel: str) -> dict[str, Any]:
    """The JSON fields saying what a run would do on ``channel`` (None without a plan)."""
    line = planned.get(channel)
    return {
        "plan_action": str(line["action"]) if line else None,
        "plan_reason": str(line["reason"] or "") if line else None,
        "plan": verdict(line) if planned else None,
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
        None, "--stage", help="Stage to render; default: the one the days overdue suggest."
    ),
    channel: str | None = typer.Option(
        None,
        "--channel",
        help="email, sms or voice (prints the call's TwiML); default: email and sms.",
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Instant the days overdue are counted at (ISO 8601)."
    ),
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
    if stage is not None and base_stage(stage) not in policy.stage_names:
        fail(
            f"--stage {stage!r} is not a stage of the policy; use one of "
            f"{', '.join(policy.stage_names)} (or a repeat such as "
            f"{repeat_stage(policy.stage_order[-1], 2)})"
        )
    when = parse_as_of(as_of)
    channels = [channel] if channel else ["email", "sms"]
    planned: dict[str, dict[str, Any]] = {}
    chosen_tone = chosen_segment = None
    asked = stage is not None
    try:
        if stage is None:
            # The exact stage a run would plan (ladder semantics, segment ladders, ledger),
            # from the planner itself rather than a second copy of the ladder.
            planned = plan_for_invoice(get_engine(), policy, invoice, when)
            if planned:
                first = next(iter(planned.values()))
                stage = str(first["stage"])
                chosen_tone, chosen_segment = str(first["tone"]), str(first["segment"])
        items = load_preview(
            get_engine(),
            policy,
            invoice,
            stage,
            channels,
            when,
            tone=chosen_tone,
            segment=chosen_segment,
        )
    except DunningError as exc:
        fail(str(exc))
    together: list[dict[str, Any]] = []
    if planned and policy.consolidate_for(str(chosen_segment)) == "customer":
        try:
            together = customer_lines(get_engine(), policy, invoice, when)
        except DunningError as exc:
            fail(str(exc))
    for data in items:
        line = planned.get(data.channel)
        group = [data]
        for other in travelling_with(together, invoice, data.channel)[1:]:
            try:
                group += load_preview(
                    get_engine(),
                    policy,
                    str(other["invoice_number"]),
                    str(other["stage"]),
                    [data.channel],
                    when,
                    tone=str(other["tone"]),
                    segment=str(other["segment"]),
                )
            except DunningError as exc:
                fail(str(exc))
        if asked:
            said = "as asked with --stage (the plan may differ: run without --stage)"
        elif not planned:
            said = f"{verdict(None)}; showing the stage the days overdue reach"
        elif line is None:
            said = (
                f"would not be sent: stage {data.stage} has no {data.channel} in the "
                f"{chosen_segment} ladder"
            )
        else:
            said = verdict(line)
        if len(group) > 1:
            said += (
                f"; one message for {len(group)} invoices (consolidate = customer): "
                + ", ".join(g.invoice_number for g in group)
            )
        if not json_mode:
            out.print(
                f"{data.channel} · stage {data.stage}: {said}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        address = data.email if data.channel == "email" else data.phone
        if not address:
            if channel:
                fail(
                    f"customer {data.customer_id} of invoice {invoice} has no "
                    f"{'email address' if channel == 'email' else 'phone number'}"
                )
            console.print(
                f"[yellow]no {data.channel} address for customer "
                f"{data.customer_id}: {data.channel} skipped[/]"
            )
            continue
        if data.channel == "voice":
            try:
                show_call(get_engine(), data, json_mode)
            except DunningError as exc:
                fail(str(exc))
            continue
        try:
            message = compose_group(group) if len(group) > 1 else compose(data)
        except DunningError as exc:
            fail(str(exc))
        path = _write_html(message, invoice, data.stage)
        if json_mode:
            emit_json(
                _as_dict(message, data.stage, path)
                | _plan_fields(planned, data.channel)
                | {"invoices": [g.invoice_number for g in group]}
            )
            continue
        out.rule(f"{data.channel} · {message.template_key} · stage {data.stage}")
        out.print(f"To: {message.to}", highlight=False, markup=False, soft_wrap=True)
        if message.subject:
            out.print(f"Subject: {message.subject}", highlight=False, markup=False, soft_wrap=True)
        out.print("")
        out.print(message.text, highlight=False, markup=False, soft_wrap=True)
        if message.channel == "sms":
            count = count_segments(message.text)
            out.print(
                f"[{count.segments} {count.encoding} segment(s)]", highlight=False, markup=False
            )
        if path:
            out.print(f"HTML: {path}", highlight=False, markup=False, soft_wrap=True)
        if html and message.html:
            out.print(message.html, highlight=False, markup=False, soft_wrap=True)
        for warning in message.warnings:
            console.print(f"[yellow]warning:[/] {warning}")

"""Delivering one batch of planned reminders: claim → compose → send → record.

Plain code over an engine and channel objects, so it runs the same inside a Prefect task, a
test or a notebook. The Prefect task in dunning/tasks/deliver.py adds retries around it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from dunning import ledger
from dunning.channels.base import Channel
from dunning.core.messages import OutboundMessage, ReminderData, SendResult
from dunning.errors import ConfigError, ProviderAuthError, TemplateError
from dunning.faultpoint import crash_point
from dunning.masking import scrub
from dunning.render import lead_reminder, message_order

if TYPE_CHECKING:
    from dunning.policy.model import Policy

Composer = Callable[[ReminderData], OutboundMessage]
#: Composes the one message of several reminders (their lead first): dunning.render.compose_group.
GroupComposer = Callable[[list[ReminderData]], OutboundMessage]
#: Composes every unit of a batch at once, in order (a unit: one reminder, or a customer's
#: reminders with their lead first); a TemplateError in a unit's place fails that unit only:
#: dunning.render.processes.compose_units.
BatchComposer = Callable[[list[list[ReminderData]]], "list[OutboundMessage | TemplateError]"]
#: Channels on which one message per customer lists several invoices (a call stays per invoice).
CONSOLIDATED_CHANNELS = ("email", "sms")


def customer_messages(
    claimed: list[ReminderData], policy: Policy | None = None
) -> list[list[ReminderData]]:
    """``claimed`` split into one message per customer and channel (email, sms; a call stays
    one per invoice), each with its lead (``dunning.render.lead_reminder`` by ``policy``'s
    ladder; None: the default policy) first and the others in the order the message lists
    them."""
    by_key: dict[tuple[str, str, int], list[ReminderData]] = {}
    for data in claimed:
        single = data.channel not in CONSOLIDATED_CHANNELS
        key = (data.customer_id, data.channel, data.reminder_id if single else 0)
        by_key.setdefault(key, []).append(data)
    messages = []
    for members in by_key.values():
        lead = lead_reminder(members, policy)
        messages.append([lead, *(m for m in message_order(members) if m is not lead)])
    return messages


@dataclass
class BatchResult:
    """Counts of one delivery attempt of a batch, and the longest Retry-After asked for."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    released: int = 0  # transient failure, back to planned
    ambiguous: int = 0  # timeout: left claimed for reconciliation
    retry_after: float | None = None
    skip_reasons: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def transient(self) -> int:
        """How many reminders of this attempt are worth another try."""
        return self.released


def deliver_batch(
    engine: Engine,
    reminder_ids: Sequence[int],
    *,
    claimer: str,
    channels: dict[str, Channel],
    compose: Composer,
    lease_seconds: int = 300,
    min_balance: ledger.MinBalance | None = None,
    as_of: dt.datetime | None = None,
    compose_group: GroupComposer | None = None,
    policy: Policy | None = None,
    compose_many: BatchComposer | None = None,
) -> BatchResult:
    """Send the still-planned reminders among ``reminder_ids``; returns what happened.

    Only rows this call wins in the claim are sent, so running it twice (a Prefect retry, an
    overlapping run) re-attempts only what is still unsent.

    ``compose_group`` (one message per customer; the batch holds whole customers): the rows
    of a customer on a channel are claimed together and go out as one message composed by
    it; every row of that message is recorded with the same provider result (one provider
    message id; a failure fails them all). A row that could not be claimed or must not go
    out (paid meanwhile) is left out of the message before it is composed. ``policy``: the
    run's policy, whose ladder picks each message's lead stage (None: the default policy);
    pass the same one to ``compose_group``. ``compose_many``: composes all of the batch's
    messages at once instead of ``compose``/``compose_group`` one by one (in worker
    processes: ``dunning.render.processes.compose_units``).
    """
    result = BatchResult()
    crash_point("before_claim")
    outcome = ledger.claim(
        engine,
        reminder_ids,
        claimer=claimer,
        lease_seconds=lease_seconds,
        min_balance=min_balance,
        as_of=as_of,
        group=partial(customer_messages, policy=policy) if compose_group else None,
    )
    crash_point("after_claim")
    result.claimed = len(outcome.claimed)
    result.skipped = len(outcome.skipped)
    for reason in outcome.skipped.values():
        result.skip_reasons[reason] = result.skip_reasons.get(reason, 0) + 1

    by_channel: dict[str, list[OutboundMessage]] = {}
    failed_render: dict[int, tuple[str, str]] = {}
    # The rows each message stands for, by the message's reminder id (its lead's).
    members: dict[int, list[int]] = {
        g[0].reminder_id: [m.reminder_id for m in g] for g in outcome.groups
    }
    grouped = {rid for ids in members.values() for rid in ids}
    units: list[list[ReminderData]] = [
        *outcome.groups,
        *([d] for d in outcome.claimed if d.reminder_id not in grouped),
    ]
    composed = (
        compose_many(units)
        if compose_many
        else [_compose(u, compose, compose_group) for u in units]
    )
    for unit, msg in zip(units, composed, strict=True):
        data = unit[0]
        if isinstance(msg, TemplateError):
            for member in unit:
                failed_render[member.reminder_id] = ("template_error", scrub(str(msg))[:200])
            continue
        result.warnings.extend(f"{data.invoice_number}: {w}" for w in msg.warnings)
        by_channel.setdefault(data.channel, []).append(msg)
    if failed_render:
        ledger.fail_claimed(engine, failed_render, claimer=claimer)
        result.failed += len(failed_render)

    for channel_name, messages in by_channel.items():
        try:
            # A channel may be built on first use (dunning/tasks/deliver.py); an incomplete
            # configuration (voice without DUNNING_WEBHOOK_PUBLIC_URL) surfaces here.
            channel = channels[channel_name]
            results: list[SendResult] = channel.send_batch(messages)
        except (ProviderAuthError, ConfigError):
            # Nothing went out: give every claimed row back so the next run can send it.
            ledger.release(
                engine,
                [
                    rid
                    for ms in by_channel.values()
                    for m in ms
                    for rid in members.get(m.reminder_id, [m.reminder_id])
                ],
                claimer=claimer,
            )
            raise
        crash_point("after_send")
        sent_fields: dict[int, dict[str, Any]] = {
            rid: {
                "to_address": m.to,
                "subject": m.subject,
                "body": m.text,
                "template": m.template_key or None,
                "locale": m.locale,
            }
            for m in messages
            for rid in members.get(m.reminder_id, [m.reminder_id])
        }
        # A message of several rows: each row is recorded with the message's result.
        results = [
            replace(r, reminder_id=rid)
            for r in results
            for rid in members.get(r.reminder_id, [r.reminder_id])
        ]
        for rec in ledger.record(engine, results, sent_fields, claimer=claimer):
            if rec.status == "sent":
                result.sent += 1
            elif rec.status == "failed_permanent":
                result.failed += 1
            elif rec.status == "planned":
                result.released += 1
            else:
                result.ambiguous += 1
        crash_point("after_record")
        waits = [r.retry_after for r in results if r.transient and r.retry_after]
        if waits:
            result.retry_after = max(waits + [result.retry_after or 0.0])
    return result


def _compose(
    unit: list[ReminderData], compose: Composer, compose_group: GroupComposer | None
) -> OutboundMessage | TemplateError:
    """``unit``'s message (a group's by ``compose_group``), or the TemplateError that stopped it."""
    try:
        return compose_group(unit) if len(unit) > 1 and compose_group else compose(unit[0])
    except TemplateError as exc:
        return exc

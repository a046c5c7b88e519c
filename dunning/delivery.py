"""Delivering one batch of planned reminders: claim → compose → send → record.

Plain code over an engine and channel objects, so it runs the same inside a Prefect task, a
test or a notebook. The Prefect task in dunning/tasks/deliver.py adds retries around it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from dunning import ledger
from dunning.channels.base import Channel, OutboundMessage, ReminderData, SendResult
from dunning.errors import ConfigError, ProviderAuthError, TemplateError
from dunning.faultpoint import crash_point
from dunning.masking import scrub

Composer = Callable[[ReminderData], OutboundMessage]


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
) -> BatchResult:
    """Send the still-planned reminders among ``reminder_ids``; returns what happened.

    Only rows this call wins in the claim are sent, so running it twice (a Prefect retry, an
    overlapping run) re-attempts only what is still unsent.
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
    )
    crash_point("after_claim")
    result.claimed = len(outcome.claimed)
    result.skipped = len(outcome.skipped)
    for reason in outcome.skipped.values():
        result.skip_reasons[reason] = result.skip_reasons.get(reason, 0) + 1

    by_channel: dict[str, list[OutboundMessage]] = {}
    failed_render: dict[int, tuple[str, str]] = {}
    for data in outcome.claimed:
        try:
            msg = compose(data)
        except TemplateError as exc:
            failed_render[data.reminder_id] = ("template_error", scrub(str(exc))[:200])
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
                engine, [m.reminder_id for ms in by_channel.values() for m in ms], claimer=claimer
            )
            raise
        crash_point("after_send")
        sent_fields: dict[int, dict[str, Any]] = {
            m.reminder_id: {
                "to_address": m.to,
                "subject": m.subject,
                "body": m.text,
                "template": m.template_key or None,
                "locale": m.locale,
            }
            for m in messages
        }
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

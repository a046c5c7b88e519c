"""Record and fail: a claimed reminder's end of an attempt (sent, failed_permanent, released
back to planned, or left claimed when the send is ambiguous)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, bindparam, select, update

from dunning.core.messages import SendResult
from dunning.core.status import ReminderStatus as S
from dunning.db.models import Reminder, utcnow
from dunning.ledger.common import _chunks
from dunning.ledger.events import flag_customer
from dunning.ledger.outbox import Event, emit


@dataclass(frozen=True)
class Recorded:
    """One reminder's end of an attempt, as recorded."""

    reminder_id: int
    status: str  # sent | failed_permanent | planned (released, transient) | claimed (ambiguous)
    error_code: str | None = None
    reason: str | None = None


def record(
    engine: Engine,
    results: Sequence[SendResult],
    messages: dict[int, dict[str, Any]],
    *,
    claimer: str,
    now: dt.datetime | None = None,
) -> list[Recorded]:
    """Write each provider result to the ledger; returns what each row became.

    - accepted → ``sent`` with the provider's message id and what was sent;
    - permanent error → ``failed_permanent`` with code and reason (an opt-out error also
      records the customer's opt-out; an invalid e-mail address is marked invalid);
    - transient error with no doubt that nothing went out (429, 5xx, refused connection) →
      back to ``planned`` so a retry or the next run sends it;
    - timeout (the provider may have accepted it) → stays ``claimed`` until its lease
      expires and ``reconcile_stale`` settles it.
    Only rows this claimer holds are touched, so a stale worker cannot overwrite.
    """
    now = now or utcnow()
    out: list[Recorded] = []
    # Why groups: one executemany per kind of outcome (and set of message fields) instead of
    # one UPDATE per row; each row keeps its own claimed_by/status guard.
    groups: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    flags: list[tuple[SendResult, dict[str, Any]]] = []
    for res in results:
        msg = messages.get(res.reminder_id, {})
        row: dict[str, Any] = {
            "b_id": res.reminder_id,
            "b_provider": res.provider,
            "b_error_code": res.error_code,
            "b_reason": res.error,
        }
        if res.ok:
            kind, fields = "sent", tuple(sorted(msg))
            row.update(b_error_code=None, b_reason=None, b_pmid=res.provider_message_id)
            out.append(Recorded(res.reminder_id, S.SENT))
        elif res.transient:
            kind, fields = ("ambiguous" if _ambiguous(res) else "released"), ()
            status = S.CLAIMED if kind == "ambiguous" else S.PLANNED
            out.append(Recorded(res.reminder_id, status, res.error_code, res.error))
        else:
            kind, fields = "failed_permanent", tuple(sorted(msg))
            flags.append((res, msg))
            out.append(Recorded(res.reminder_id, S.FAILED_PERMANENT, res.error_code, res.error))
        row.update({f"b_{k}": msg[k] for k in fields})
        groups.setdefault((kind, fields), []).append(row)
    with engine.begin() as conn:
        for (kind, fields), rows in groups.items():
            values: dict[str, Any] = {
                "provider": bindparam("b_provider"),
                "error_code": bindparam("b_error_code"),
                "reason": bindparam("b_reason"),
                "updated_at": now,
                **{k: bindparam(f"b_{k}") for k in fields},
                **_OUTCOME_VALUES[kind](now),
            }
            conn.execute(update(Reminder).where(_held(claimer)).values(values), rows)
        for res, msg in flags:
            _flag_customer(conn, res, msg)
        _emit_outcomes(
            conn, [r.reminder_id for r in out if r.status in (S.SENT, S.FAILED_PERMANENT)], now
        )
    return out


def _emit_outcomes(conn: Any, reminder_ids: list[int], now: dt.datetime) -> None:
    """Outbox events (reminder.sent / reminder.failed) for the rows this transaction just
    moved to sent or failed_permanent (a stale worker's results matched no row: no event)."""
    events: list[Event] = []
    for chunk in _chunks(sorted(reminder_ids)):
        rows = conn.execute(
            select(
                Reminder.id,
                Reminder.invoice_id,
                Reminder.customer_id,
                Reminder.stage,
                Reminder.channel,
                Reminder.status,
                Reminder.error_code,
            ).where(
                Reminder.id.in_(chunk),
                Reminder.updated_at == now,
                Reminder.status.in_((S.SENT, S.FAILED_PERMANENT)),
            )
        )
        for r in rows:
            data = {"stage": r.stage, "channel": r.channel}
            if r.status != S.SENT:
                data["error_code"] = r.error_code
            events.append(
                Event(
                    "reminder.sent" if r.status == S.SENT else "reminder.failed",
                    r.invoice_id,
                    r.customer_id,
                    r.id,
                    data,
                )
            )
    emit(conn, events, now)


def _ambiguous(res: SendResult) -> bool:
    """Whether a transient failure may still have reached the provider (a timeout)."""
    return (res.error_code or "").startswith("timeout")


#: The columns each outcome of ``record`` sets besides provider, error and message fields.
_OUTCOME_VALUES: dict[str, Callable[[dt.datetime], dict[str, Any]]] = {
    "sent": lambda now: {
        "status": S.SENT,
        "provider_message_id": bindparam("b_pmid"),
        "sent_at": now,
        "lease_expires_at": None,
    },
    "released": lambda now: {
        "status": S.PLANNED,
        "claimed_by": None,
        "lease_expires_at": None,
        "message_group": None,
    },
    "ambiguous": lambda now: {},
    "failed_permanent": lambda now: {
        "status": S.FAILED_PERMANENT,
        "failed_at": now,
        "lease_expires_at": None,
    },
}


def _held(claimer: str) -> Any:
    """The guard of a per-row ledger write: the row is still claimed by ``claimer``."""
    return and_(
        Reminder.id == bindparam("b_id"),
        Reminder.status == S.CLAIMED,
        Reminder.claimed_by == claimer,
    )


def _flag_customer(conn: Any, res: SendResult, msg: dict[str, Any]) -> None:
    """Record what a permanent failure says about the customer (``flag_customer``): a
    provider opt-out (Twilio 21610, an SMS opt-out) and an invalid e-mail address."""
    customer = conn.scalar(select(Reminder.customer_id).where(Reminder.id == res.reminder_id))
    if customer is None:
        return
    to_address = str(msg.get("to_address") or "")
    flag_customer(
        conn,
        [customer],
        opt_out_channel="sms" if res.opt_out else None,
        invalid_email=res.invalid_address and "@" in to_address,
        reminder_id=res.reminder_id,
    )


def fail_claimed(engine: Engine, reasons: dict[int, tuple[str, str]], *, claimer: str) -> None:
    """Mark claimed reminders ``failed_permanent`` before sending (e.g. a template error)."""
    if not reasons:
        return
    now = utcnow()
    rows = [
        {"b_id": rid, "b_error_code": code, "b_reason": reason}
        for rid, (code, reason) in reasons.items()
    ]
    with engine.begin() as conn:
        conn.execute(
            update(Reminder)
            .where(_held(claimer))
            .values(
                status=S.FAILED_PERMANENT,
                error_code=bindparam("b_error_code"),
                reason=bindparam("b_reason"),
                failed_at=now,
                lease_expires_at=None,
                updated_at=now,
            ),
            rows,
        )
        _emit_outcomes(conn, list(reasons), now)


def release(engine: Engine, reminder_ids: Sequence[int], *, claimer: str) -> int:
    """Give claimed reminders back to ``planned`` (nothing was sent); returns how many."""
    now = utcnow()
    count = 0
    with engine.begin() as conn:
        for chunk in _chunks(list(reminder_ids)):
            res = conn.execute(
                update(Reminder)
                .where(
                    Reminder.id.in_(chunk),
                    Reminder.status == S.CLAIMED,
                    Reminder.claimed_by == claimer,
                )
                .values(
                    status=S.PLANNED,
                    claimed_by=None,
                    lease_expires_at=None,
                    message_group=None,
                    updated_at=now,
                )
            )
            count += res.rowcount
    return count

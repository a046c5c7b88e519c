"""Delivery and recovery metrics over the reminders ledger (pandas over one SQL query).

The per-reminder facts (delivered_at, opened_at, clicked_at, bounced_at, replied_at, paid_at)
are stored in the ledger; these aggregates are computed from them on demand.

- Delivery, bounce, open and click rates count only reminders sent through a provider that
  reports delivery (SendGrid, Twilio): the outbox and SMTP never report it, so their sends
  are counted (``sent``) but never in a rate's denominator (``tracked``).
- "Paid within N days" counts only *matured* reminders, those sent at least N days before
  ``as_of``: a reminder sent an hour ago has had no chance to be paid within 7 days. Each rate
  comes with its ``n`` (``paid_7d_n``, the matured reminders); with none matured the rate is
  None, shown "n/a".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from dunning.core.status import BOUNCED, REACHED
from dunning.db import session_scope
from dunning.db.models import Invoice, Reminder, utcnow

#: Dimensions a report can group by (``week`` = ISO week of sending, ``run`` = flow run).
DIMENSIONS = ("stage", "channel", "provider", "segment", "template", "week", "run")
PAID_WITHIN_DAYS = (3, 7, 14)
#: Providers that never report delivery: their sends stay out of every delivery-side rate.
NO_DELIVERY_REPORTS = ("outbox", "smtp")
#: Count column -> the call_outcome it counts (voice reminders).
CALL_OUTCOMES = {
    "answered": "completed",
    "voicemail": "voicemail",
    "no_answer": "no-answer",
    "busy": "busy",
    "call_failed": "failed",
}
_COLUMNS = [
    "id",
    "invoice_id",
    "stage",
    "channel",
    "provider",
    "segment",
    "template",
    "flow_run_id",
    "status",
    "call_outcome",
    "currency",
    "balance_due",
    "sent_at",
    "delivered_at",
    "opened_at",
    "clicked_at",
    "bounced_at",
    "replied_at",
    "paid_at",
]
_INSTANTS = _COLUMNS[12:]


def load_sent(engine: Engine, since: dt.datetime | None = None) -> pd.DataFrame:
    """One row per reminder that was sent, with its tracking timestamps (UTC)."""
    # The currency a reminder stated, else its invoice's (rows written before it was stored).
    columns = [
        func.coalesce(Reminder.currency, Invoice.currency)
        if c == "currency"
        else getattr(Reminder, c)
        for c in _COLUMNS
    ]
    stmt = (
        select(*columns)
        .join(Invoice, Invoice.id == Reminder.invoice_id)
        .where(Reminder.sent_at.is_not(None))
    )
    if since is not None:
        stmt = stmt.where(Reminder.sent_at >= since)
    with session_scope(engine) as session:
        frame = pd.DataFrame(session.execute(stmt).all(), columns=_COLUMNS)
    for column in _INSTANTS:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def reminder_flags(frame: pd.DataFrame, as_of: dt.datetime | None = None) -> pd.DataFrame:
    """``frame`` with 0/1 outcome columns per reminder (delivered, bounced, opened...).

    ``matured_<N>d`` is 1 when the reminder was sent at least N days before ``as_of`` (default
    now, UTC); ``paid_<N>d`` is 1 only for a matured reminder paid within N days of sending.
    """
    now = pd.Timestamp(as_of or utcnow())
    out = frame.copy()
    status = out["status"]
    out["sent"] = 1
    out["provider"] = out["provider"].fillna("-")
    tracked = ~out["provider"].isin(NO_DELIVERY_REPORTS)
    out["tracked"] = tracked.astype(int)
    is_email, is_sms = out["channel"] == "email", out["channel"] == "sms"
    out["email"] = (is_email & tracked).astype(int)
    out["sms"] = (is_sms & tracked).astype(int)
    out["voice"] = (out["channel"] == "voice").astype(int)
    # A call's outcome (completed = a person listened, voicemail, no-answer, busy, failed).
    for name, outcome in CALL_OUTCOMES.items():
        out[name] = (out["call_outcome"] == outcome).astype(int)
    reached = out[["delivered_at", "opened_at", "clicked_at"]].notna().any(axis=1)
    delivered = reached | status.isin(REACHED)
    out["delivered"] = (delivered & tracked).astype(int)
    bounced = out["bounced_at"].notna() | status.isin(BOUNCED)
    out["bounced"] = (bounced & tracked).astype(int)
    # A click proves an open even when the tracking pixel was blocked.
    opened = out["opened_at"].notna() | out["clicked_at"].notna()
    out["opened"] = (opened & is_email & tracked).astype(int)
    out["clicked"] = (out["clicked_at"].notna() & is_email & tracked).astype(int)
    out["replied"] = (out["replied_at"].notna() & is_sms & tracked).astype(int)
    delay = out["paid_at"] - out["sent_at"]
    for days in PAID_WITHIN_DAYS:
        matured = out["sent_at"] + pd.Timedelta(days=days) <= now
        out[f"matured_{days}d"] = matured.astype(int)
        out[f"paid_{days}d"] = (matured & (delay <= pd.Timedelta(days=days))).astype(int)
    out["week"] = out["sent_at"].dt.strftime("%G-W%V")
    out["run"] = out["flow_run_id"].fillna("-")
    for column in ("segment", "template"):
        out[column] = out[column].fillna("-")
    return out


COUNTS = [
    "sent",
    "tracked",
    "email",
    "sms",
    "voice",
    *CALL_OUTCOMES,
    "delivered",
    "bounced",
    "opened",
    "clicked",
    "replied",
    *(c for d in PAID_WITHIN_DAYS for c in (f"matured_{d}d", f"paid_{d}d")),
]


def summarise(flags: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Counts and rates per group of ``by`` (one "all" row when ``by`` is empty).

    Rates are fractions (0.25); None where the denominator is 0. ``paid_<N>d_n`` is the
    number of matured reminders the paid-within rate is computed over.
    """
    unknown = [d for d in by if d not in DIMENSIONS]
    if unknown:
        raise ValueError(
            f"cannot group by {', '.join(unknown)}; choose from {', '.join(DIMENSIONS)}"
        )
    keys = list(by) or ["scope"]
    data = flags.assign(scope="all") if not by else flags
    if data.empty and not set(COUNTS) <= set(data.columns):
        return pd.DataFrame(columns=[*keys, *COUNTS])
    # An empty frame with the flag columns (no reminder in the week) goes through the same
    # steps, so callers always get the rate and paid-within columns.
    table = data.groupby(keys, dropna=False)[COUNTS].sum().reset_index()

    def rate(num: str, den: str) -> pd.Series:
        return (table[num] / table[den].where(table[den] > 0)).round(4)

    table["delivery_rate"] = rate("delivered", "tracked")
    table["bounce_rate"] = rate("bounced", "tracked")
    table["open_rate"] = rate("opened", "email")
    table["click_rate"] = rate("clicked", "email")
    table["reply_rate"] = rate("replied", "sms")
    table["answer_rate"] = rate("answered", "voice")
    for days in PAID_WITHIN_DAYS:
        table[f"paid_{days}d_n"] = table[f"matured_{days}d"]
        table[f"paid_{days}d_rate"] = rate(f"paid_{days}d", f"matured_{days}d")
    return table.drop(columns=[f"matured_{d}d" for d in PAID_WITHIN_DAYS])


def compute_metrics(
    engine: Engine,
    by: Sequence[str] = ("stage", "channel"),
    since: dt.datetime | None = None,
    as_of: dt.datetime | None = None,
) -> pd.DataFrame:
    """Delivery, bounce, open, click, reply and paid-within rates grouped by ``by``."""
    return summarise(reminder_flags(load_sent(engine, since), as_of), by)


def percent(value: Any) -> str:
    """A fraction as a percentage with one decimal (``"25.0%"``); ``"n/a"`` for None/NaN."""
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return f"{100 * float(value):.1f}%"


def to_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """``table`` as JSON-ready dicts (NaN rates become None)."""
    clean = table.astype(object).where(table.notna(), None)
    return [
        {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in clean.to_dict(orient="records")
    ]


#: The tracking-run-summary table: stage x channel, what an operator reads at a glance.
SUMMARY_COLUMNS = [
    ("stage", "stage"),
    ("channel", "channel"),
    ("sent", "sent"),
    ("delivery_rate", "delivered %"),
    ("open_rate", "opened %"),
    ("bounce_rate", "bounced %"),
    ("paid_7d_rate", "paid 7d %"),
]


def to_markdown(table: pd.DataFrame) -> str:
    """``table`` as a markdown table (Prefect artifacts): rates as percentages, "n/a" for none.

    A table with the stage and channel columns is shown as the compact tracking summary
    (stage, channel, sent, delivered %, opened %, bounced %, paid 7d % with its n).
    """
    records = to_records(table)
    compact = {"stage", "channel", "paid_7d_n"} <= set(table.columns)
    if compact:
        columns = [c for c, _ in SUMMARY_COLUMNS]
        heads = [h for _, h in SUMMARY_COLUMNS]
    else:
        columns = heads = [str(c) for c in table.columns]
    lines = [
        "| " + " | ".join(heads) + " |",
        "|" + "".join("---|" if c in DIMENSIONS else "---:|" for c in columns),
    ]
    for rec in records:
        cells = []
        for c in columns:
            if c.endswith("_rate"):
                cell = percent(rec[c])
                if c == "paid_7d_rate" and compact:
                    cell += f" (n={rec['paid_7d_n']})"
            else:
                cell = "-" if rec[c] is None else str(rec[c])
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

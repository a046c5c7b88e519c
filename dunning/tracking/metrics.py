"""Delivery and recovery metrics over the reminders ledger (pandas over one SQL query).

The per-reminder facts (delivered_at, opened_at, clicked_at, bounced_at, replied_at, paid_at)
are stored in the ledger; these aggregates are computed from them on demand. Every rate has
the number of reminders sent in the group as its denominator; open and click rates count
email reminders only, the reply rate SMS reminders only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from dunning.db import session_scope
from dunning.db.models import Reminder

#: Dimensions a report can group by (``week`` = ISO week of sending, ``run`` = flow run).
DIMENSIONS = ("stage", "channel", "segment", "template", "week", "run")
PAID_WITHIN_DAYS = (3, 7, 14)
#: Count column -> the call_outcome it counts (voice reminders).
CALL_OUTCOMES = {"answered": "completed", "voicemail": "voicemail", "no_answer": "no-answer",
                 "busy": "busy", "call_failed": "failed"}
_COLUMNS = ["stage", "channel", "segment", "template", "flow_run_id", "status", "call_outcome",
            "sent_at",
            "delivered_at", "opened_at", "clicked_at", "bounced_at", "replied_at", "paid_at"]


def load_sent(engine: Engine, since: dt.datetime | None = None) -> pd.DataFrame:
    """One row per reminder that was sent, with its tracking timestamps (UTC)."""
    stmt = select(*(getattr(Reminder, c) for c in _COLUMNS)).where(Reminder.sent_at.is_not(None))
    if since is not None:
        stmt = stmt.where(Reminder.sent_at >= since)
    with session_scope(engine) as session:
        frame = pd.DataFrame(session.execute(stmt).all(), columns=_COLUMNS)
    for column in _COLUMNS[7:]:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def reminder_flags(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with 0/1 outcome columns per reminder (delivered, bounced, opened...)."""
    out = frame.copy()
    status = out["status"]
    out["sent"] = 1
    out["email"] = (out["channel"] == "email").astype(int)
    out["sms"] = (out["channel"] == "sms").astype(int)
    out["voice"] = (out["channel"] == "voice").astype(int)
    # A call's outcome (completed = a person listened, voicemail, no-answer, busy, failed).
    for name, outcome in CALL_OUTCOMES.items():
        out[name] = (out["call_outcome"] == outcome).astype(int)
    reached = out[["delivered_at", "opened_at", "clicked_at"]].notna().any(axis=1)
    is_email, is_sms = out["email"] == 1, out["sms"] == 1
    delivered = reached | status.isin(["delivered", "opened", "clicked", "replied"])
    out["delivered"] = delivered.astype(int)
    bounced = out["bounced_at"].notna() | status.isin(["bounced", "undelivered"])
    out["bounced"] = bounced.astype(int)
    # A click proves an open even when the tracking pixel was blocked.
    opened = out["opened_at"].notna() | out["clicked_at"].notna()
    out["opened"] = (opened & is_email).astype(int)
    out["clicked"] = (out["clicked_at"].notna() & is_email).astype(int)
    out["replied"] = (out["replied_at"].notna() & is_sms).astype(int)
    delay = out["paid_at"] - out["sent_at"]
    for days in PAID_WITHIN_DAYS:
        out[f"paid_{days}d"] = (delay <= pd.Timedelta(days=days)).astype(int)
    out["week"] = out["sent_at"].dt.strftime("%G-W%V")
    out["run"] = out["flow_run_id"].fillna("-")
    for column in ("segment", "template"):
        out[column] = out[column].fillna("-")
    return out


def summarise(flags: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Counts and rates per group of ``by`` (one "all" row when ``by`` is empty)."""
    unknown = [d for d in by if d not in DIMENSIONS]
    if unknown:
        raise ValueError(
            f"cannot group by {', '.join(unknown)}; choose from {', '.join(DIMENSIONS)}"
        )
    counts = ["sent", "email", "sms", "voice", *CALL_OUTCOMES, "delivered", "bounced", "opened",
              "clicked", "replied",
              *(f"paid_{d}d" for d in PAID_WITHIN_DAYS)]
    keys = list(by) or ["scope"]
    data = flags.assign(scope="all") if not by else flags
    if data.empty:
        return pd.DataFrame(columns=[*keys, *counts])
    table = data.groupby(keys, dropna=False)[counts].sum().reset_index()

    def rate(num: str, den: str) -> pd.Series:
        return (table[num] / table[den].where(table[den] > 0)).round(4)

    table["delivery_rate"] = rate("delivered", "sent")
    table["bounce_rate"] = rate("bounced", "sent")
    table["open_rate"] = rate("opened", "email")
    table["click_rate"] = rate("clicked", "email")
    table["reply_rate"] = rate("replied", "sms")
    table["answer_rate"] = rate("answered", "voice")
    for days in PAID_WITHIN_DAYS:
        table[f"paid_{days}d_rate"] = rate(f"paid_{days}d", "sent")
    return table


def compute_metrics(engine: Engine, by: Sequence[str] = ("stage", "channel"),
                    since: dt.datetime | None = None) -> pd.DataFrame:
    """Delivery, bounce, open, click, reply and paid-within rates grouped by ``by``."""
    return summarise(reminder_flags(load_sent(engine, since)), by)


def to_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """``table`` as JSON-ready dicts (NaN rates become None)."""
    clean = table.astype(object).where(table.notna(), None)
    return [{str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in clean.to_dict(orient="records")]


def to_markdown(table: pd.DataFrame) -> str:
    """``table`` as a GitHub-flavoured markdown table (for Prefect artifacts)."""
    records = to_records(table)
    columns = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for rec in records:
        cells = ("-" if rec[c] is None else str(rec[c]) for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

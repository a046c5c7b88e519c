"""Money metrics: the balance reminded, what was collected after reminders, and DSO.

Amounts stay per currency (no exchange rates); every figure is a Decimal in the currency's
ISO 4217 exponent.

- ``balance_reminded``: per group, the balance due stated by the first reminder of each
  invoice in the group (an invoice reminded twice in a group counts once).
- ``collected_<N>d``: per group, the payments (refunds excluded) received within N days after
  a reminder of the group was sent, each payment counted once per group; only over reminders
  whose N days have elapsed at ``as_of`` (``collected_<N>d_n`` of them), so a figure never
  grows merely because time passes after it is shown.
- DSO (days sales outstanding), per currency over a period of ``days`` ending at ``as_of``:
  ``receivables / credit sales * days``, where receivables are the open balances at ``as_of``
  of invoices issued by then (invoice amount minus payments up to ``as_of``; void invoices
  excluded) and credit sales the amounts of invoices issued within the period. None when
  nothing was invoiced in the period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from dunning.db import session_scope
from dunning.db.models import Invoice, Payment, utcnow
from dunning.money import quantize
from dunning.tracking.metrics import load_sent

COLLECTED_WITHIN_DAYS = (7, 14, 30)
GROUPS = ("stage", "segment", "channel")


def _payments(engine: Engine, invoice_ids: list[int]) -> pd.DataFrame:
    rows: list[Any] = []
    with session_scope(engine) as session:
        for start in range(0, len(invoice_ids), 500):
            rows += session.execute(
                select(Payment.id, Payment.invoice_id, Payment.amount, Payment.paid_at).where(
                    Payment.invoice_id.in_(invoice_ids[start : start + 500]), Payment.amount > 0
                )
            ).all()
    frame = pd.DataFrame(rows, columns=["payment_id", "invoice_id", "amount", "paid_at"])
    frame["paid_at"] = pd.to_datetime(frame["paid_at"], utc=True)
    return frame


def _total(values: pd.Series, currency: str) -> str:
    return str(quantize(sum((Decimal(v) for v in values), Decimal(0)), currency))


def money_table(
    sent: pd.DataFrame, payments: pd.DataFrame, as_of: dt.datetime, groups: Sequence[str] = GROUPS
) -> pd.DataFrame:
    """One row per (dimension, value, currency): reminders, balance reminded, collected.

    ``sent`` is :func:`dunning.tracking.metrics.load_sent`'s frame, ``payments`` one row per
    positive payment (payment_id, invoice_id, amount, paid_at) of those invoices. Amounts are
    strings of Decimals in the currency's exponent (JSON-safe and exact).
    """
    now = pd.Timestamp(as_of)
    sent = sent[sent["currency"].notna()].copy()
    sent["segment"] = sent["segment"].fillna("-")
    pairs = sent.drop(columns=["paid_at"]).merge(payments, on="invoice_id", how="inner")
    pairs = pairs[pairs["paid_at"] >= pairs["sent_at"]]
    rows: list[dict[str, Any]] = []
    for dim in groups:
        for (value, currency), group in sent.groupby([dim, "currency"], sort=True):
            first = group.sort_values("sent_at").drop_duplicates("invoice_id")
            row: dict[str, Any] = {
                "dimension": dim,
                "value": value,
                "currency": currency,
                "reminders": len(group),
                "invoices": len(first),
                "balance_reminded": _total(first["balance_due"].dropna(), str(currency)),
            }
            mine = pairs[(pairs[dim] == value) & (pairs["currency"] == currency)]
            for days in COLLECTED_WITHIN_DAYS:
                window = pd.Timedelta(days=days)
                matured = group["sent_at"] + window <= now
                hit = mine[
                    (mine["sent_at"] + window <= now)
                    & (mine["paid_at"] - mine["sent_at"] <= window)
                ]
                row[f"collected_{days}d"] = _total(
                    hit.drop_duplicates("payment_id")["amount"], str(currency)
                )
                row[f"collected_{days}d_n"] = int(matured.sum())
            rows.append(row)
    return pd.DataFrame(rows)


def money_report(
    engine: Engine, as_of: dt.datetime | None = None, groups: Sequence[str] = GROUPS
) -> pd.DataFrame:
    """:func:`money_table` over every reminder sent, as of ``as_of`` (default now, UTC)."""
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    sent = load_sent(engine)
    if sent.empty:
        return pd.DataFrame()
    payments = _payments(engine, sorted(int(i) for i in sent["invoice_id"].unique()))
    return money_table(sent, payments, as_of or utcnow(), groups)


def dso(engine: Engine, as_of: dt.datetime | None = None, days: int = 90) -> list[dict[str, Any]]:
    """Days sales outstanding per currency (see the module docstring for the formula).

    One dict per currency: ``currency``, ``receivables``, ``credit_sales`` (Decimal strings),
    ``days`` and ``dso`` (days, one decimal; None without sales in the period).
    """
    if days < 1:
        raise ValueError(f"days is {days}; the DSO period must be at least one day")
    at = as_of or utcnow()
    start = (at - dt.timedelta(days=days)).date()
    paid = (
        select(Payment.invoice_id, func.sum(Payment.amount).label("paid"))
        .where(Payment.paid_at <= at)
        .group_by(Payment.invoice_id)
        .subquery()
    )
    stmt = (
        select(Invoice.currency, Invoice.amount, Invoice.issued_on, paid.c.paid)
        .outerjoin(paid, paid.c.invoice_id == Invoice.id)
        .where(Invoice.issued_on <= at.date(), Invoice.status != "void")
    )
    totals: dict[str, list[Decimal]] = {}
    with session_scope(engine) as session:
        for currency, amount, issued_on, paid_sum in session.execute(stmt):
            ar_sales = totals.setdefault(currency, [Decimal(0), Decimal(0)])
            ar_sales[0] += max(Decimal(amount) - Decimal(paid_sum or 0), Decimal(0))
            if issued_on > start:
                ar_sales[1] += Decimal(amount)
    out = []
    for currency, (receivables, sales) in sorted(totals.items()):
        out.append(
            {
                "currency": currency,
                "receivables": str(quantize(receivables, currency)),
                "credit_sales": str(quantize(sales, currency)),
                "days": days,
                "dso": round(float(receivables / sales * days), 1) if sales else None,
            }
        )
    return out


def money_markdown(table: pd.DataFrame, dso_rows: list[dict[str, Any]]) -> str:
    """The money table by stage and the DSO as markdown (for the tracking-run-summary)."""
    lines = [
        "| stage | currency | reminders | balance reminded | collected 7d | collected 14d "
        "| collected 30d |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    stages = table[table["dimension"] == "stage"] if not table.empty else table
    for r in stages.to_dict(orient="records"):
        lines.append(
            f"| {r['value']} | {r['currency']} | {r['reminders']} | {r['balance_reminded']} | "
            + " | ".join(
                f"{r[f'collected_{d}d']} (n={r[f'collected_{d}d_n']})"
                for d in COLLECTED_WITHIN_DAYS
            )
            + " |"
        )
    lines += [
        "",
        "| currency | receivables | credit sales | period (days) | DSO (days) |",
        "|---|---:|---:|---:|---:|",
    ]
    for d in dso_rows:
        lines.append(
            f"| {d['currency']} | {d['receivables']} | {d['credit_sales']} | "
            f"{d['days']} | {'n/a' if d['dso'] is None else d['dso']} |"
        )
    return "\n".join(lines)

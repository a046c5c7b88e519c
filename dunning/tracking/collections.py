"""Recovery analytics: how invoices get paid after their due date, and after which stage.

- Cohort curves: per group (segment, or the highest ladder stage reached), the share of
  invoices fully paid by each day since due. An invoice counts at day d only when d days have
  passed since its due date at ``as_of`` (right-censoring: young invoices do not drag the
  curve down).
- Collected after each stage, per currency: each payment (refunds excluded) is credited to the
  last ladder stage sent to its invoice before it ("after no reminder": none before it).
- DSO over time: :func:`dunning.tracking.recovery.dso` at the end of each of the last weeks.
- A chart of the curves (matplotlib, Agg backend) as PNG bytes.

The frames come from one query each (:func:`load_frames`); the functions on frames are pure
pandas, so the notebook calls the same ones.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from dunning.db import session_scope
from dunning.db.models import Invoice, Payment, Reminder, utcnow
from dunning.money import quantize
from dunning.tracking.recovery import dso

#: Days since due at which the curves are read (the table); the chart draws every day.
CURVE_DAYS = (0, 7, 14, 30, 60, 90)
#: The stage reached by an invoice no ladder reminder went out for.
NO_REMINDER = "none"
_UNITS = 10_000
_SENT = ("sent", "delivered", "opened", "clicked", "replied", "bounced")


def load_frames(engine: Engine) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(invoices, reminders sent, payments) as DataFrames.

    invoices: invoice_id, customer_id, currency, amount (Decimal), due_on (date), status;
    void invoices excluded. reminders: invoice_id, stage, segment, sent_at (UTC). payments:
    invoice_id, amount (Decimal, refunds excluded), paid_at (UTC).
    """
    with session_scope(engine) as s:
        inv = pd.DataFrame(
            s.execute(
                select(
                    Invoice.id,
                    Invoice.customer_id,
                    Invoice.currency,
                    Invoice.amount,
                    Invoice.due_on,
                    Invoice.status,
                ).where(Invoice.status != "void")
            ).all(),
            columns=["invoice_id", "customer_id", "currency", "amount", "due_on", "status"],
        )
        rem = pd.DataFrame(
            s.execute(
                select(
                    Reminder.invoice_id, Reminder.stage, Reminder.segment, Reminder.sent_at
                ).where(Reminder.sent_at.is_not(None), Reminder.status.in_(_SENT))
            ).all(),
            columns=["invoice_id", "stage", "segment", "sent_at"],
        )
        pay = pd.DataFrame(
            s.execute(
                select(Payment.invoice_id, Payment.amount, Payment.paid_at).where(
                    Payment.amount > 0
                )
            ).all(),
            columns=["invoice_id", "amount", "paid_at"],
        )
    rem["sent_at"] = pd.to_datetime(rem["sent_at"], utc=True)
    pay["paid_at"] = pd.to_datetime(pay["paid_at"], utc=True)
    return inv, rem, pay


def _base(stage: str) -> str:
    name = stage.removesuffix(".retry")
    head, _, tail = name.rpartition("_r")
    return head if head and tail.isdigit() else name


def invoice_facts(
    invoices: pd.DataFrame,
    reminders: pd.DataFrame,
    payments: pd.DataFrame,
    stage_order: Sequence[str],
) -> pd.DataFrame:
    """Per invoice: paid_at (the instant payments first covered the amount; NaT: not yet),
    days_to_pay (local days from due to paid_at; NaN: unpaid), segment (of its latest
    reminder, ``-`` without one) and stage_reached (highest ladder stage of ``stage_order``
    sent, ``none`` without one)."""
    out = invoices.copy()
    pay = payments.sort_values("paid_at").copy()
    # Exact: amounts as integers of 1/10000 (every ISO 4217 exponent is at most 4).
    pay["units"] = [int(Decimal(a) * _UNITS) for a in pay["amount"]]
    pay["cum"] = pay.groupby("invoice_id")["units"].cumsum()
    amounts = out.set_index("invoice_id")["amount"].map(lambda a: int(Decimal(a) * _UNITS))
    pay = pay[pay["invoice_id"].isin(amounts.index)]
    covered = pay[pay["cum"].to_numpy() >= amounts.reindex(pay["invoice_id"]).to_numpy()]
    first = covered.groupby("invoice_id")["paid_at"].min()
    out["paid_at"] = out["invoice_id"].map(first)
    due = pd.to_datetime(out["due_on"]).dt.tz_localize("UTC")
    out["days_to_pay"] = (out["paid_at"] - due).dt.total_seconds() / 86400.0
    rank = {name: i for i, name in enumerate(stage_order)}
    rem = reminders.copy()
    rem["base"] = rem["stage"].astype(str).map(_base)
    rem["rank"] = rem["base"].map(rank)
    ladder = rem[rem["rank"].notna()]
    top = ladder.sort_values("rank").groupby("invoice_id")["base"].last()
    out["stage_reached"] = out["invoice_id"].map(top).fillna(NO_REMINDER)
    seg = rem.sort_values("sent_at").groupby("invoice_id")["segment"].last()
    out["segment"] = out["invoice_id"].map(seg).fillna("-")
    return out


def cohort_curves(
    facts: pd.DataFrame, as_of: dt.datetime, by: str, days: Sequence[int] = CURVE_DAYS
) -> pd.DataFrame:
    """Share of invoices paid by each day since due, per value of ``by`` (segment or
    stage_reached) and overall (``all``): columns by, days_since_due, n (invoices due at
    least that many days before ``as_of``), paid, share_paid (None when n is 0)."""
    now = pd.Timestamp(as_of)
    due = pd.to_datetime(facts["due_on"]).dt.tz_localize("UTC")
    age = (now - due).dt.total_seconds() / 86400.0
    rows = []
    groups = [("all", facts.index)] + [(str(k), g.index) for k, g in facts.groupby(by, sort=True)]
    for name, idx in groups:
        for d in days:
            eligible = idx[(age.loc[idx] >= d).to_numpy()]
            paid = int((facts.loc[eligible, "days_to_pay"] <= d).sum())
            n = len(eligible)
            rows.append(
                {
                    by: name,
                    "days_since_due": int(d),
                    "n": n,
                    "paid": paid,
                    "share_paid": round(paid / n, 4) if n else None,
                }
            )
    return pd.DataFrame(rows)


def collected_after_stage(
    reminders: pd.DataFrame,
    payments: pd.DataFrame,
    invoices: pd.DataFrame,
    stage_order: Sequence[str],
) -> pd.DataFrame:
    """Per (stage, currency): the payments credited to the stage (the last ladder stage sent
    to the invoice before the payment; ``none`` when none was) and their sum (string, the
    currency's exponent). Columns stage, currency, payments, collected."""
    rank = {name: i for i, name in enumerate(stage_order)}
    rem = reminders.copy()
    rem["base"] = rem["stage"].astype(str).map(_base)
    rem = rem[rem["base"].isin(rank)].sort_values("sent_at")
    pay = payments.sort_values("paid_at").copy()
    pay = pay.merge(invoices[["invoice_id", "currency"]], on="invoice_id", how="inner")
    if pay.empty:
        return pd.DataFrame(columns=["stage", "currency", "payments", "collected"])
    merged = pd.merge_asof(
        pay,
        rem[["invoice_id", "sent_at", "base"]],
        left_on="paid_at",
        right_on="sent_at",
        by="invoice_id",
        direction="backward",
    )
    merged["stage"] = merged["base"].fillna(NO_REMINDER)
    rows = []
    order = [*stage_order, NO_REMINDER]
    for (stage, currency), group in merged.groupby(["stage", "currency"], sort=False):
        total = sum((Decimal(a) for a in group["amount"]), Decimal(0))
        rows.append(
            {
                "stage": stage,
                "currency": currency,
                "payments": len(group),
                "collected": str(quantize(total, str(currency))),
            }
        )
    table = pd.DataFrame(rows)
    table["_o"] = table["stage"].map({s: i for i, s in enumerate(order)})
    return table.sort_values(["_o", "currency"]).drop(columns="_o").reset_index(drop=True)


def dso_over_time(
    engine: Engine, as_of: dt.datetime, weeks: int = 12, days: int = 90
) -> pd.DataFrame:
    """DSO per currency at the end of each of the last ``weeks`` weeks up to ``as_of``:
    columns as_of (date), currency, dso (days; None without sales in the period)."""
    rows = []
    for k in range(weeks - 1, -1, -1):
        at = as_of - dt.timedelta(weeks=k)
        for d in dso(engine, at, days):
            rows.append(
                {"as_of": at.date().isoformat(), "currency": d["currency"], "dso": d["dso"]}
            )
    return pd.DataFrame(rows, columns=["as_of", "currency", "dso"])


def curves_png(facts: pd.DataFrame, as_of: dt.datetime, by: str = "stage_reached") -> bytes:
    """A PNG chart (matplotlib, Agg) of the share paid by day since due, one line per value
    of ``by`` and one for all invoices, days 0 to 90."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = cohort_curves(facts, as_of, by, range(0, 91))
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        for name, group in curves.groupby(by, sort=False):
            data = group[group["n"] > 0]
            ax.plot(
                data["days_since_due"],
                data["share_paid"],
                label=str(name),
                linewidth=2.5 if name == "all" else 1.2,
            )
        ax.set_xlabel("days since due")
        ax.set_ylabel("share of invoices paid")
        ax.set_ylim(0, 1)
        ax.set_title(f"Paid by days since due, by {by.replace('_', ' ')}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def collections_report(
    engine: Engine, stage_order: Sequence[str], as_of: dt.datetime | None = None, weeks: int = 12
) -> dict[str, Any]:
    """The whole recovery analysis as JSON-ready data: as_of, invoices, curves_by_segment,
    curves_by_stage (see :func:`cohort_curves`), collected_after_stage and dso_over_time
    (records)."""
    return collections_analysis(engine, stage_order, as_of, weeks)[0]


def collections_analysis(
    engine: Engine, stage_order: Sequence[str], as_of: dt.datetime | None = None, weeks: int = 12
) -> tuple[dict[str, Any], pd.DataFrame]:
    """(:func:`collections_report`'s data, the per-invoice facts it was computed from: for
    :func:`curves_png`)."""
    at = as_of or utcnow()
    inv, rem, pay = load_frames(engine)
    # As of ``at``: what had happened by then (a report for a past date reads the same later).
    stamp = pd.Timestamp(at)
    rem, pay = rem[rem["sent_at"] <= stamp], pay[pay["paid_at"] <= stamp]
    facts = invoice_facts(inv, rem, pay, stage_order)
    clean = lambda t: t.astype(object).where(t.notna(), None).to_dict("records")  # noqa: E731
    return {
        "as_of": at.astimezone(dt.UTC).isoformat(),
        "invoices": len(facts),
        "curves_by_segment": clean(cohort_curves(facts, at, "segment")),
        "curves_by_stage": clean(cohort_curves(facts, at, "stage_reached")),
        "collected_after_stage": clean(collected_after_stage(rem, pay, inv, stage_order)),
        "dso_over_time": clean(dso_over_time(engine, at, weeks)),
    }, facts


def to_markdown(report: dict[str, Any], png: bytes | None = None) -> str:
    """The report as markdown with the chart embedded as a data URI (Prefect artifact)."""

    def table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for r in rows:
            cells = []
            for c in columns:
                v = r.get(c)
                cells.append("n/a" if v is None else (f"{v:.1%}" if c == "share_paid" else str(v)))
            lines.append("| " + " | ".join(cells) + " |")
        return lines

    def pivot(rows: list[dict[str, Any]], by: str) -> list[str]:
        frame = pd.DataFrame(rows)
        if frame.empty:
            return ["(no invoices)"]
        cols = sorted(frame["days_since_due"].unique())
        lines = [
            f"| {by} | " + " | ".join(f"day {d}" for d in cols) + " |",
            "|---|" + "---:|" * len(cols),
        ]
        for name, g in frame.groupby(by, sort=False):
            cells = []
            for d in cols:
                r = g[g["days_since_due"] == d].iloc[0]
                share = r["share_paid"]
                cells.append(
                    "n/a" if share is None or share != share else f"{share:.0%} (n={r['n']})"
                )
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return lines

    lines = [
        f"# Collections report as of {report['as_of']}",
        "",
        f"{report['invoices']} invoices. Share paid by days since due (only invoices "
        "due at least that long ago count).",
        "",
        "## By stage reached",
        "",
    ]
    lines += pivot(report["curves_by_stage"], "stage_reached")
    lines += ["", "## By segment", ""] + pivot(report["curves_by_segment"], "segment")
    if png:
        uri = "data:image/png;base64," + base64.b64encode(png).decode()
        lines += ["", f"![share paid by days since due]({uri})"]
    lines += ["", "## Collected after each stage", ""]
    lines += table(report["collected_after_stage"], ["stage", "currency", "payments", "collected"])
    lines += ["", "## DSO over time (90-day period)", ""]
    lines += table(report["dso_over_time"], ["as_of", "currency", "dso"])
    return "\n".join(lines)


__all__ = [
    "CURVE_DAYS",
    "NO_REMINDER",
    "collected_after_stage",
    "cohort_curves",
    "collections_analysis",
    "collections_report",
    "curves_png",
    "dso_over_time",
    "invoice_facts",
    "load_frames",
    "to_markdown",
]

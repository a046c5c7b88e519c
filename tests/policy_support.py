"""Builders for policy tests: small in-memory portfolios and plan lookups."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from dunning.core.portfolio import Portfolio, build_portfolio
from dunning.policy import load_policy, plan
from dunning.policy.model import Policy

#: A Tuesday, 11:00 in Berlin.
AS_OF = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
TODAY = date(2026, 11, 24)
POLICY = load_policy()


def history(
    customer_id: str, count: int, days_late: int = 0, start_id: int = 1000
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``count`` paid invoices (and their payments) each paid ``days_late`` days after due."""
    invoices, payments = [], []
    for i in range(count):
        due = TODAY - timedelta(days=200 + 20 * i)
        iid = start_id + i
        invoices.append(
            {
                "invoice_id": iid,
                "invoice_number": f"H-{customer_id}-{i}",
                "customer_id": customer_id,
                "amount_minor": 5000,
                "paid_minor": 5000,
                "due_on": due,
                "issued_on": due - timedelta(days=30),
                "status": "paid",
            }
        )
        payments.append(
            {
                "invoice_id": iid,
                "amount_minor": 5000,
                "paid_at": datetime.combine(
                    due + timedelta(days=days_late), datetime.min.time(), UTC
                ),
            }
        )
    return invoices, payments


def portfolio(
    customer: dict[str, Any] | None = None,
    invoice: dict[str, Any] | None = None,
    *,
    days_overdue: int = 0,
    attempts: list[dict[str, Any]] | None = None,
    ledger: list[dict[str, Any]] | None = None,
    paid_history: int = 0,
    days_late: int = 0,
) -> Portfolio:
    """One Berlin customer with one open 100.00 EUR invoice ``days_overdue`` days past due."""
    cust = {"customer_id": "c1", "country": "DE", "timezone": "Europe/Berlin", "locale": "de_DE"}
    inv = {
        "invoice_id": 1,
        "invoice_number": "INV-1",
        "customer_id": "c1",
        "amount_minor": 10000,
        "due_on": TODAY - timedelta(days=days_overdue),
    }
    hist_inv, hist_pay = history("c1", paid_history, days_late)
    return build_portfolio(
        customers=[cust | (customer or {})],
        invoices=[inv | (invoice or {})] + hist_inv,
        payments=hist_pay,
        attempts=attempts,
        ledger=[{"invoice_id": 1} | row for row in (ledger or [])],
    )


def lines(
    p: Portfolio, as_of: datetime = AS_OF, policy: Policy = POLICY
) -> dict[tuple[str, str], dict[str, Any]]:
    """The plan lines of invoice 1 by (stage, channel)."""
    df = plan(p, as_of, policy)
    df = df.loc[df["invoice_id"] == 1]
    records: list[dict[str, Any]] = df.to_dict("records")  # type: ignore[assignment]
    return {(str(r["stage"]), str(r["channel"])): r for r in records}


def actions(
    p: Portfolio, as_of: datetime = AS_OF, policy: Policy = POLICY
) -> dict[tuple[str, str], str]:
    """``(stage, channel) -> "send"`` or ``"skip:reason"``/``"defer:reason"`` for invoice 1."""
    return {
        k: (str(r["action"]) if r["action"] == "send" else f"{r['action']}:{r['reason']}")
        for k, r in lines(p, as_of, policy).items()
    }


def utc(text: str) -> pd.Timestamp:
    """``text`` as a UTC Timestamp."""
    return pd.Timestamp(text, tz="UTC")

"""Payment-history features and the segment rules (first match wins)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from dunning.core.portfolio import build_portfolio
from dunning.policy import segment_frame
from dunning.segments.rules import assign_segments, segment_summary
from tests.policy_support import AS_OF, POLICY, TODAY, history


def _customer_with(invoices, payments=(), attempts=()):
    return build_portfolio([{"customer_id": "c1"}], invoices, list(payments), list(attempts))


def _paid(iid, due_days_ago, paid_days_late, amount=5000, currency="EUR"):
    due = TODAY - timedelta(days=due_days_ago)
    inv = {
        "invoice_id": iid,
        "invoice_number": f"I{iid}",
        "customer_id": "c1",
        "currency": currency,
        "amount_minor": amount,
        "paid_minor": amount,
        "due_on": due,
        "status": "paid",
        "issued_on": due - timedelta(days=30),
    }
    pay = {
        "invoice_id": iid,
        "amount_minor": amount,
        "paid_at": datetime.combine(
            due + timedelta(days=paid_days_late), datetime.min.time()
        ).isoformat()
        + "Z",
    }
    return inv, pay


def test_features_from_history():
    rows = [_paid(i, 100 + 10 * i, late) for i, late in enumerate([0, 0, 3, 10, -2])]
    open_inv = {
        "invoice_id": 99,
        "invoice_number": "OPEN",
        "customer_id": "c1",
        "amount_minor": 7000,
        "paid_minor": 2000,
        "due_on": TODAY - timedelta(days=20),
        "issued_on": TODAY - timedelta(days=50),
    }
    attempts = [
        {"invoice_id": 99, "attempted_at": AS_OF - timedelta(days=10)},
        {"invoice_id": 99, "attempted_at": AS_OF - timedelta(days=100)},
        {"invoice_id": 99, "attempted_at": AS_OF - timedelta(days=5), "outcome": "succeeded"},
    ]
    p = _customer_with([r[0] for r in rows] + [open_inv], [r[1] for r in rows], attempts)
    f = segment_frame(p, AS_OF, POLICY).loc["c1"]
    # Judged: five settled (late 0, 0, 3, 10, 0) and the open one 20 days late.
    assert f["settled_count"] == 6
    assert f["on_time_share"] == pytest.approx(3 / 6)
    assert f["mean_days_late"] == pytest.approx((3 + 10 + 20) / 6)
    assert f["p90_days_late"] == pytest.approx(pd.Series([0, 0, 3, 10, 0, 20]).quantile(0.9))
    assert f["failed_attempts_90d"] == 1
    assert f["open_invoices"] == 1
    assert f["oldest_open_days_overdue"] == 20
    assert f["invoice_count"] == 6
    assert f["tenure_days"] == 140 + 30
    assert not f["large_overdue"]
    assert f["segment"] == "at_risk"  # the failed attempt decides first


@pytest.mark.parametrize(
    ("currency", "amount", "large"),
    [
        ("EUR", 500000, True),
        ("EUR", 499999, False),
        ("JPY", 750000, True),
        ("JPY", 500000, False),
    ],
)
def test_large_overdue_balance_is_per_currency(currency, amount, large):
    inv = {
        "invoice_id": 1,
        "invoice_number": "I1",
        "customer_id": "c1",
        "currency": currency,
        "amount_minor": amount,
        "due_on": TODAY - timedelta(days=3),
    }
    f = segment_frame(_customer_with([inv]), AS_OF, POLICY).loc["c1"]
    assert bool(f["large_overdue"]) is large
    assert (f["segment"] == "at_risk") is large


@pytest.mark.parametrize(
    ("lates", "segment"),
    [
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "reliable"),
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, 2], "reliable"),  # 90% on time
        ([0, 0, 0, 0, 0, 0, 0, 0, 2, 2], "occasional_late"),
        ([0, 0, 0, 0, 0, 0, 3, 3, 3, 3], "occasional_late"),
        ([0, 0, 0, 0, 0, 0, 0, 0, 30, 30], "chronic_late"),  # p90 of 15+ days late
        ([5, 5, 5, 0, 0, 5, 5, 5, 5, 5], "chronic_late"),  # on time less than half the time
        ([0, 0], "new"),  # too little history
    ],
)
def test_segment_rules(lates, segment):
    rows = [_paid(i, 100 + 10 * i, late) for i, late in enumerate(lates)]
    p = _customer_with([r[0] for r in rows], [r[1] for r in rows])
    assert segment_frame(p, AS_OF, POLICY).loc["c1", "segment"] == segment


def test_customer_without_invoices_is_new_and_first_rule_wins():
    p = build_portfolio(
        [{"customer_id": "c1"}, {"customer_id": "c2"}],
        *history("c2", 4)[:1],
        payments=history("c2", 4)[1],
    )
    feats = segment_frame(p, AS_OF, POLICY)
    assert feats.loc["c1", "segment"] == "new"
    assert feats.loc["c2", "segment"] == "reliable"
    # Reordering the rules changes the outcome: the first matching rule decides.
    late = feats.assign(failed_attempts_90d=2, settled_count=1)
    assert assign_segments(late, POLICY).tolist() == ["at_risk", "at_risk"]


def test_segment_summary_keeps_currencies_apart():
    invoices = [
        {
            "invoice_id": 1,
            "invoice_number": "A",
            "customer_id": "c1",
            "currency": "EUR",
            "amount_minor": 1000,
            "due_on": TODAY,
        },
        {
            "invoice_id": 2,
            "invoice_number": "B",
            "customer_id": "c1",
            "currency": "USD",
            "amount_minor": 2500,
            "paid_minor": 500,
            "due_on": TODAY,
        },
        {
            "invoice_id": 3,
            "invoice_number": "C",
            "customer_id": "c1",
            "currency": "EUR",
            "amount_minor": 700,
            "due_on": TODAY,
            "status": "void",
        },
    ]
    p = _customer_with(invoices)
    summary = segment_summary(p, segment_frame(p, AS_OF, POLICY), AS_OF)
    new = summary.loc[summary["segment"] == "new"].set_index("currency")
    assert new.loc["EUR", "open_balance_minor"] == 1000
    assert new.loc["USD", "open_balance_minor"] == 2000
    assert new["customers"].tolist() == [1, 1]
    empty = summary.loc[summary["segment"] == "reliable"]
    assert empty[["customers", "open_invoices"]].values.tolist() == [[0, 0]]

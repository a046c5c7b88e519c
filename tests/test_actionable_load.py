"""The hourly run's actionable-only load plans exactly what the full load plans.

"Equal to today's full plan" (dunning.portfolio.load_portfolio, ``actionable_at``): the plan of
the actionable portfolio has exactly the lines (every column, same order) the plan of the whole
portfolio has for the invoices in scope, and every other line of the full plan is a skip with
a reason in INFORMATIONAL_SKIPS. Checked on random small portfolios written to a real database
(SQLite; PostgreSQL too with DUNNING_TEST_DATABASE_URL) at random as-of instants.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, insert

from dunning.db.models import Base, Customer, Invoice, Payment, PaymentAttempt, Reminder
from dunning.policy import load_policy, plan, segment_frame
from dunning.portfolio import INFORMATIONAL_SKIPS, horizon, load_portfolio
from dunning.segment_snapshot import segments_for, write_snapshot

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
BASE_DAY = dt.date(2026, 11, 24)
ZONES = ("Pacific/Kiritimati", "Pacific/Pago_Pago", "America/New_York", "UTC", "Asia/Tokyo")
STAGES = ("pre_due", "due", "overdue_1", "overdue_2", "final_notice", "final_notice_r2")
STATUSES = ("planned", "claimed", "sent", "delivered", "failed_permanent", "skipped", "unknown")
POLICY = load_policy(None)
PLACE = {"country": "US", "locale": "en_US"}

days = st.integers(-40, 12)
maybe_day = st.none() | days.map(lambda d: BASE_DAY + dt.timedelta(days=d))
instants = st.integers(-40 * 24, 3 * 24).map(
    lambda h: dt.datetime.combine(BASE_DAY, dt.time(12), tzinfo=dt.UTC) + dt.timedelta(hours=h)
)


@st.composite
def portfolios(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    """Rows for customers, invoices, payments, attempts and reminders around BASE_DAY."""
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in ("c", "i", "p", "a", "r")}
    invoice_id = 0
    for c in range(draw(st.integers(1, 3))):
        cid = f"C{c}"
        out["c"].append(
            {
                "customer_id": cid,
                "name": cid,
                "email": draw(st.sampled_from([None, "a@example.com", "a@example.com"])),
                "phone": draw(st.sampled_from([None, "+14155550100"])),
                "timezone": draw(st.sampled_from(ZONES)),
                "country": "US",
                "locale": "en_US",
                "sms_consent": draw(st.booleans()),
                "voice_consent": draw(st.booleans()),
                "paused_until": draw(st.none() | st.none() | maybe_day),
            }
        )
        for _ in range(draw(st.integers(0, 4))):
            invoice_id += 1
            currency = draw(st.sampled_from(["USD", "USD", "JPY"]))
            amount = Decimal(draw(st.sampled_from([50, 99, 100, 101, 120, 300, 5000])))
            if currency == "USD":
                amount /= 100
            out["i"].append(
                {
                    "id": invoice_id,
                    "invoice_number": f"INV-{invoice_id}",
                    "customer_id": cid,
                    "currency": currency,
                    "amount": amount,
                    "issued_on": BASE_DAY - dt.timedelta(days=60),
                    "due_on": BASE_DAY + dt.timedelta(days=draw(days)),
                    "status": draw(st.sampled_from(["open", "open", "open", "paid", "disputed"])),
                    "promise_to_pay_on": draw(st.none() | st.none() | maybe_day),
                    "paused_until": draw(st.none() | st.none() | maybe_day),
                    "payment_link": "https://pay.example.com/x",
                }
            )
            for k in range(draw(st.integers(0, 2))):
                out["p"].append(
                    {
                        "invoice_id": invoice_id,
                        "amount": amount * Decimal(draw(st.sampled_from(["0.1", "0.5", "1"]))),
                        "paid_at": draw(instants),
                        "external_id": f"pay-{invoice_id}-{k}",
                    }
                )
            for k in range(draw(st.integers(0, 2))):
                out["a"].append(
                    {
                        "invoice_id": invoice_id,
                        "attempted_at": draw(instants),
                        "outcome": draw(st.sampled_from(["failed", "succeeded"])),
                        "external_id": f"att-{invoice_id}-{k}",
                    }
                )
            keys = draw(
                st.lists(
                    st.tuples(st.sampled_from(STAGES), st.sampled_from(["email", "sms", "voice"])),
                    max_size=3,
                    unique=True,
                )
            )
            for stage, channel in keys:
                status = draw(st.sampled_from(STATUSES))
                when = draw(instants)
                out["r"].append(
                    {
                        "invoice_id": invoice_id,
                        "customer_id": cid,
                        "stage": stage,
                        "channel": channel,
                        "status": status,
                        "planned_at": when,
                        "planned_for": draw(st.none() | st.just(when)),
                        "sent_at": when if status not in ("planned", "skipped") else None,
                        "call_outcome": "no-answer" if channel == "voice" else None,
                    }
                )
    return out


def _write(engine: Engine, rows: dict[str, list[dict[str, Any]]]) -> None:
    """``rows`` as the only rows of the database."""
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))
        for model, key in (
            (Customer, "c"),
            (Invoice, "i"),
            (Payment, "p"),
            (PaymentAttempt, "a"),
            (Reminder, "r"),
        ):
            if rows[key]:
                conn.execute(insert(model), rows[key])


def _compare(full: pd.DataFrame, part: pd.DataFrame, in_scope: set[int]) -> None:
    """The definition of "equal to today's full plan" (see the module docstring)."""
    mine = full["invoice_id"].isin(in_scope).to_numpy()
    if not mine.any():  # an empty plan's columns have no dtype to compare
        assert part.empty, part
    else:
        pd.testing.assert_frame_equal(
            part.reset_index(drop=True),
            full.loc[mine].reset_index(drop=True),
            check_categorical=False,
        )
    rest = full.loc[~mine]
    assert (rest["action"].astype(str) == "skip").all(), rest
    assert set(rest["reason"].astype(str)) <= INFORMATIONAL_SKIPS, rest


@SETTINGS
@given(rows=portfolios(), hours=st.integers(-30 * 24, 10 * 24))
def test_actionable_plan_equals_the_full_plan(
    engine: Engine, rows: dict[str, list[dict[str, Any]]], hours: int
) -> None:
    _write(engine, rows)
    as_of = dt.datetime.combine(BASE_DAY, dt.time(3), tzinfo=dt.UTC) + dt.timedelta(hours=hours)
    full = plan(load_portfolio(engine), as_of, POLICY)
    portfolio = load_portfolio(engine, actionable_at=as_of, policy=POLICY)
    in_scope = set(portfolio.invoices.loc[portfolio.invoices["in_scope"], "invoice_id"].tolist())
    _compare(full, plan(portfolio, as_of, POLICY), in_scope)


MAX_AGE = dt.timedelta(hours=48)
#: Per customer: a usable snapshot row at the run's as_of, none, one too old, one at a later
#: as_of (history after the run: not usable either).
SNAPSHOT_KINDS = ("fresh", "fresh", "none", "stale", "later")


@SETTINGS
@given(
    rows=portfolios(),
    hours=st.integers(-30 * 24, 10 * 24),
    kinds=st.lists(st.sampled_from(SNAPSHOT_KINDS), min_size=3, max_size=3),
)
def test_snapshot_reduced_load_plans_the_full_plan(
    engine: Engine, rows: dict[str, list[dict[str, Any]]], hours: int, kinds: list[str]
) -> None:
    """Customers with a usable snapshot row are loaded with only the planner's part of their
    history, segmented from the snapshot; the others in full, segmented now. The plan equals
    the full plan (the definition above)."""
    _write(engine, rows)
    as_of = dt.datetime.combine(BASE_DAY, dt.time(3), tzinfo=dt.UTC) + dt.timedelta(hours=hours)
    whole = load_portfolio(engine)
    full = plan(whole, as_of, POLICY)
    frame = segment_frame(whole, as_of, POLICY)
    kind = {f"C{c}": k for c, k in enumerate(kinds)}
    written = {"fresh": as_of, "stale": as_of - MAX_AGE - dt.timedelta(hours=1)}
    written["later"] = as_of + dt.timedelta(hours=1)
    for name, at in written.items():
        ids = [c for c in frame.index if kind[c] == name]
        if ids:
            write_snapshot(engine, frame.loc[ids], at, POLICY, replace=False)
    portfolio = load_portfolio(engine, actionable_at=as_of, policy=POLICY, snapshot_max_age=MAX_AGE)
    cust = portfolio.customers
    partial = set(cust.loc[~cust["full_history"], "customer_id"])
    assert partial == {c for c in cust["customer_id"] if kind[c] == "fresh"}
    segments, used = segments_for(engine, portfolio, as_of, POLICY, max_age=MAX_AGE)
    assert used.on_the_fly == len(cust) - len(partial)
    in_scope = set(portfolio.invoices.loc[portfolio.invoices["in_scope"], "invoice_id"].tolist())
    _compare(full, plan(portfolio, as_of, POLICY, segments=segments), in_scope)
    # Customers loaded in full keep their whole history; the others at most what was in scope
    # or has a ledger row.
    with_ledger = {r["invoice_id"] for r in rows["r"]}
    for row in rows["i"]:
        loaded = row["id"] in set(portfolio.invoices["invoice_id"])
        if row["customer_id"] not in set(cust["customer_id"]):
            assert not loaded
        elif row["customer_id"] in partial:
            assert loaded == (row["id"] in in_scope or row["id"] in with_ledger)
        else:
            assert loaded


def test_a_partial_history_is_never_segmented(engine: Engine) -> None:
    """A customer loaded without its full history (a usable snapshot row at the load) is not
    segmented on the fly: segments_for and segment_frame refuse."""
    as_of = dt.datetime(2026, 11, 24, 15, tzinfo=dt.UTC)
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in ("c", "i", "p", "a", "r")}
    rows["c"].append({"customer_id": "C0", "name": "C0", "timezone": "UTC", **PLACE})
    for n, status in enumerate(("open", "paid"), start=1):
        rows["i"].append(
            {
                "id": n,
                "invoice_number": f"INV-{n}",
                "customer_id": "C0",
                "currency": "USD",
                "amount": Decimal("100"),
                "issued_on": dt.date(2026, 10, 1),
                "due_on": dt.date(2026, 11, 1),
                "status": status,
                "payment_link": "https://pay.example.com/x",
            }
        )
    rows["p"].append(
        {"invoice_id": 2, "amount": Decimal("100"), "paid_at": as_of, "external_id": "p"}
    )
    _write(engine, rows)
    whole = load_portfolio(engine)
    write_snapshot(engine, segment_frame(whole, as_of, POLICY), as_of, POLICY)
    part = load_portfolio(engine, actionable_at=as_of, policy=POLICY, snapshot_max_age=MAX_AGE)
    assert list(part.customers["full_history"]) == [False]
    assert list(part.invoices["invoice_number"]) == ["INV-1"]  # not the paid history
    assert part.payments.empty
    with pytest.raises(ValueError, match="full history"):
        segment_frame(part, as_of, POLICY)
    with pytest.raises(ValueError, match="full history"):
        plan(part, as_of, POLICY)
    # Without snapshot_max_age, or when the row is too old for the run: the full history.
    assert len(load_portfolio(engine, actionable_at=as_of, policy=POLICY).invoices) == 2
    later = as_of + MAX_AGE + dt.timedelta(hours=1)
    old = load_portfolio(engine, actionable_at=later, policy=POLICY, snapshot_max_age=MAX_AGE)
    assert list(old.customers["full_history"]) == [True]
    assert len(old.invoices) == 2
    # The snapshot gone between the load and the plan: refused, not segmented from the part.
    write_snapshot(engine, segment_frame(whole, as_of, POLICY).iloc[:0], as_of, POLICY)
    with pytest.raises(ValueError, match="full payment history"):
        segments_for(engine, part, as_of, POLICY, max_age=MAX_AGE)


def test_actionable_load_leaves_out_what_cannot_be_actionable(engine: Engine) -> None:
    """Paid, paused, promised, below-minimum and far-future invoices are out; a far-future
    invoice with a planned ledger row, and one due within the pre-due horizon, are in."""
    as_of = dt.datetime(2026, 11, 24, 15, tzinfo=dt.UTC)
    last_due, _, _ = horizon(POLICY, as_of)
    base: dict[str, Any] = {
        "customer_id": "C0",
        "currency": "USD",
        "amount": Decimal("100"),
        "issued_on": dt.date(2026, 10, 1),
        "due_on": dt.date(2026, 11, 1),
        "status": "open",
        "payment_link": "https://pay.example.com/x",
        # Every row has every key: an executemany INSERT takes its columns from the first.
        "paused_until": None,
        "promise_to_pay_on": None,
    }
    invoices = {
        "due": {},
        "paid": {"status": "paid"},
        "disputed": {"status": "disputed"},
        "small": {"amount": Decimal("0.99")},
        "paused": {"paused_until": dt.date(2026, 12, 31)},
        "promised": {"promise_to_pay_on": dt.date(2026, 12, 31)},
        "edge": {"due_on": last_due},
        "future": {"due_on": last_due + dt.timedelta(days=1)},
        "future_planned": {"due_on": last_due + dt.timedelta(days=30)},
        "paid_planned": {"status": "paid"},
    }
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in ("c", "i", "p", "a", "r")}
    rows["c"].append({"customer_id": "C0", "name": "C0", "timezone": "UTC", **PLACE})
    for n, (name, extra) in enumerate(invoices.items(), start=1):
        rows["i"].append(base | {"id": n, "invoice_number": name} | extra)
    for name in ("future_planned", "paid_planned"):
        n = list(invoices).index(name) + 1
        rows["r"].append({"invoice_id": n, "customer_id": "C0", "stage": "due", "channel": "email"})
    _write(engine, rows)
    portfolio = load_portfolio(engine, actionable_at=as_of, policy=POLICY)
    inv = portfolio.invoices
    assert set(inv.loc[inv["in_scope"], "invoice_number"]) == {
        "due",
        "edge",
        "future_planned",
        "paid_planned",
    }
    assert len(inv) == len(invoices)  # the customer's whole history, for segmentation
    with pytest.raises(ValueError, match="policy"):
        load_portfolio(engine, actionable_at=as_of)
    with pytest.raises(ValueError, match="timezone-aware"):
        load_portfolio(engine, actionable_at=as_of.replace(tzinfo=None), policy=POLICY)


def test_actionable_load_combines_with_numbers_and_shards(engine: Engine) -> None:
    """In scope: numbered, in the shard and actionable, all three."""
    as_of = dt.datetime(2026, 11, 24, 15, tzinfo=dt.UTC)
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in ("c", "i", "p", "a", "r")}
    for c in range(6):
        rows["c"].append(
            {"customer_id": f"C{c}", "name": "x", "timezone": "UTC", "shard_key": c, **PLACE}
        )
        for k, status in enumerate(("open", "paid")):
            rows["i"].append(
                {
                    "id": 10 * c + k + 1,
                    "invoice_number": f"INV-{c}-{status}",
                    "customer_id": f"C{c}",
                    "currency": "USD",
                    "amount": Decimal("100"),
                    "issued_on": dt.date(2026, 10, 1),
                    "due_on": dt.date(2026, 11, 1),
                    "status": status,
                    "payment_link": "https://pay.example.com/x",
                }
            )
    _write(engine, rows)
    part = load_portfolio(engine, actionable_at=as_of, policy=POLICY, shard=(3, 1))
    scoped = part.invoices.loc[part.invoices["in_scope"], "invoice_number"]
    assert sorted(scoped) == ["INV-1-open", "INV-4-open"]
    assert sorted(part.customers["customer_id"]) == ["C1", "C4"]
    named = load_portfolio(
        engine,
        actionable_at=as_of,
        policy=POLICY,
        invoice_numbers=["INV-2-open", "INV-2-paid", "INV-3-paid"],
    )
    assert list(named.invoices.loc[named.invoices["in_scope"], "invoice_number"]) == ["INV-2-open"]
    assert list(named.customers["customer_id"]) == ["C2"]

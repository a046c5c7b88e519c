"""Property tests over random portfolios and as-of instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dunning.core.portfolio import Portfolio, build_portfolio
from dunning.core.status import SENT_OR_LATER
from dunning.policy import plan
from dunning.policy.forecast import simulate
from dunning.policy.ladder import stage_table
from dunning.policy.window import holiday_dates
from tests.policy_support import POLICY

ZONES = [
    ("Europe/Berlin", "DE"),
    ("America/New_York", "US"),
    ("Asia/Tokyo", "JP"),
    ("Australia/Sydney", "AU"),
    ("Pacific/Kiritimati", "KI"),
    ("UTC", "GB"),
]
STAGES = list(stage_table(POLICY).names)
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
as_of_st = st.datetimes(
    min_value=datetime(2026, 3, 1), max_value=datetime(2027, 4, 1), timezones=st.just(UTC)
)


@st.composite
def portfolios(draw: st.DrawFn) -> Portfolio:
    """Up to 5 customers and 12 invoices with random dates, payments, consent and ledger rows."""
    n_cust = draw(st.integers(1, 5))
    customers = []
    for i in range(n_cust):
        tz, cc = draw(st.sampled_from(ZONES))
        customers.append(
            {
                "customer_id": f"c{i}",
                "timezone": tz,
                "country": cc,
                "sms_consent": draw(st.booleans()),
                "sms_opt_out": draw(st.booleans()),
                "has_email": draw(st.booleans()),
                "has_phone": draw(st.booleans()),
                "paused_until": draw(st.none() | st.dates(date(2026, 3, 1), date(2027, 4, 1))),
            }
        )
    invoices, ledger, attempts = [], [], []
    for j in range(draw(st.integers(1, 12))):
        amount = draw(st.integers(0, 50000))
        currency = draw(st.sampled_from(["EUR", "JPY", "USD", "BHD"]))
        invoices.append(
            {
                "invoice_id": j + 1,
                "invoice_number": f"I{j}",
                "customer_id": f"c{draw(st.integers(0, n_cust - 1))}",
                "currency": currency,
                "amount_minor": amount,
                "paid_minor": draw(st.integers(0, amount)),
                "due_on": draw(st.dates(date(2026, 1, 1), date(2027, 4, 1))),
                "status": draw(
                    st.sampled_from(["open", "open", "open", "paid", "void", "disputed"])
                ),
                "promise_to_pay_on": draw(st.none() | st.dates(date(2026, 1, 1), date(2027, 4, 1))),
            }
        )
        for _ in range(draw(st.integers(0, 2))):
            ledger.append(
                {
                    "invoice_id": j + 1,
                    "stage": draw(st.sampled_from(STAGES)),
                    "channel": draw(st.sampled_from(["email", "sms"])),
                    "status": draw(
                        st.sampled_from(
                            [
                                "planned",
                                "sent",
                                "delivered",
                                "failed_permanent",
                                "skipped",
                                "unknown",
                            ]
                        )
                    ),
                    "planned_at": datetime(2026, 1, 1, tzinfo=UTC)
                    + timedelta(days=draw(st.integers(0, 400))),
                }
            )
        if draw(st.booleans()):
            attempts.append(
                {
                    "invoice_id": j + 1,
                    "outcome": draw(st.sampled_from(["failed", "succeeded"])),
                    "attempted_at": datetime(2026, 1, 1, tzinfo=UTC)
                    + timedelta(hours=draw(st.integers(0, 9000))),
                }
            )
    unique_ledger = list({(r["invoice_id"], r["stage"], r["channel"]): r for r in ledger}.values())
    return build_portfolio(customers, invoices, attempts=attempts, ledger=unique_ledger)


@SETTINGS
@given(portfolios(), as_of_st)
def test_one_line_per_invoice_and_channel_and_one_stage_per_invoice(p, as_of):
    lines = plan(p, as_of, POLICY)
    assert not lines.duplicated(["invoice_id", "channel"]).any()
    assert (lines.groupby("invoice_id")["stage"].nunique() <= 1).all()


@SETTINGS
@given(portfolios(), as_of_st)
def test_nothing_is_sent_or_deferred_without_an_open_balance(p, as_of):
    lines = plan(p, as_of, POLICY)
    active = lines.loc[lines["action"] != "skip"]
    assert (active["balance_minor"] > 0).all()
    assert set(active.merge(p.invoices, on="invoice_id")["status"].astype(str)) <= {"open"}


@SETTINGS
@given(portfolios(), as_of_st)
def test_not_before_is_inside_the_send_window(p, as_of):
    lines = plan(p, as_of, POLICY).merge(p.customers, on="customer_id")
    window = POLICY.send_window
    for row in lines.loc[lines["action"] != "skip"].to_dict("records"):
        at: pd.Timestamp = row["not_before"]
        local = at.tz_convert(str(row["timezone"]))
        assert window.start_minute <= local.hour * 60 + local.minute < window.end_minute
        assert local.weekday() in window.weekdays
        assert local.date() not in holiday_dates(str(row["country"]), local.year)
        assert at >= pd.Timestamp(as_of)
        if row["action"] == "send":
            assert at == pd.Timestamp(as_of)
    assert lines.loc[lines["action"] == "skip", "not_before"].isna().all()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(portfolios(), as_of_st)
def test_stages_never_go_backwards_across_consecutive_days(p, as_of):
    table = stage_table(POLICY)
    sends = simulate(p, as_of, POLICY, days=9)
    if sends.empty:
        return
    ladder = sends.loc[sends["stage"].astype(str).isin(table.names[: table.payment_failed])]
    ranks = ladder.assign(rank=[table.names.index(str(s)) for s in ladder["stage"]])
    for _, group in ranks.sort_values("day", kind="stable").groupby("invoice_id"):
        assert group["rank"].is_monotonic_increasing
    # and each (invoice, stage, channel) is sent at most once over the whole period
    assert not sends.duplicated(["invoice_id", "stage", "channel"]).any()


def _sent_codes(p: Portfolio) -> dict[int, set[int]]:
    """Per invoice, the codes of ladder reminders the provider accepted (sent or later)."""
    table = stage_table(POLICY)
    led = p.ledger.loc[p.ledger["status"].astype(str).isin(SENT_OR_LATER)]
    out: dict[int, set[int]] = {}
    for inv, code in zip(
        led["invoice_id"], table.code_of(led["stage"].astype(str).to_numpy()), strict=True
    ):
        out.setdefault(int(inv), set()).add(int(code))
    return out


@SETTINGS
@given(portfolios(), as_of_st)
def test_a_message_never_claims_an_earlier_reminder_that_was_not_sent(p, as_of):
    """A send line past overdue_1 (overdue_2, final_notice, a repeat) only where the rung
    before it, or a higher one, reached the provider."""
    table = stage_table(POLICY)
    first = table.names.index("overdue_1")
    sent = _sent_codes(p)
    lines = plan(p, as_of, POLICY)
    sends = lines.loc[lines["action"] == "send"]
    for row in sends.to_dict("records"):
        code = table.names.index(str(row["stage"]))
        if first < code < table.payment_failed:
            assert any(c >= code - 1 for c in sent.get(int(row["invoice_id"]), set()))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(portfolios(), as_of_st)
def test_the_first_overdue_reminder_of_a_never_reminded_invoice_is_overdue_1(p, as_of):
    table = stage_table(POLICY)
    sent = _sent_codes(p)
    sends = simulate(p, as_of, POLICY, days=9)
    if sends.empty:
        return
    first = table.names.index("overdue_1")
    ladder = sends.assign(code=[table.names.index(str(s)) for s in sends["stage"]])
    overdue = ladder.loc[(ladder["code"] >= first) & (ladder["code"] < table.payment_failed)]
    for invoice_id, group in overdue.sort_values("day", kind="stable").groupby("invoice_id"):
        if not any(c >= first for c in sent.get(int(invoice_id), set())):
            assert str(group["stage"].iloc[0]) == "overdue_1"

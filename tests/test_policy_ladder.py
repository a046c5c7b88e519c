"""Ladder semantics: first contact, climbing one rung per reminder sent, spacing from the last
reminder sent, repeats, "until paid" and escalation (docs/policy.md, "Ladder semantics")."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from dunning.core.portfolio import build_portfolio
from dunning.errors import PolicyError
from dunning.policy import parse_policy, plan
from dunning.policy.loader import DEFAULT_POLICY_PATH
from tests.policy_support import AS_OF, POLICY, actions, portfolio


def sent(stage: str, days_ago: int, channels: tuple[str, ...] = ("email", "sms")) -> list[dict]:
    """Ledger rows of ``stage`` sent ``days_ago`` local days before AS_OF."""
    at = AS_OF - timedelta(days=days_ago)
    return [
        {"stage": stage, "channel": ch, "status": "delivered", "planned_for": at, "sent_at": at}
        for ch in channels
    ]


def stages(p: Any, as_of: datetime = AS_OF, policy: Any = POLICY) -> dict[str, str]:
    """stage -> action (or skip reason) for invoice 1, email lines only."""
    return {s: a for (s, ch), a in actions(p, as_of, policy).items() if ch == "email"}


@pytest.mark.parametrize(
    ("ledger", "days_overdue", "expected"),
    [
        # overdue_2 waits for min_gap_days (3) after overdue_1, even when reached by days
        (sent("overdue_1", 1), 20, {"overdue_1": "skip:already_sent"}),
        (sent("overdue_1", 2), 20, {"overdue_1": "skip:already_sent"}),
        (sent("overdue_1", 3), 20, {"overdue_2": "send"}),
        # and is not sooner than its offset (6 days overdue)
        (sent("overdue_1", 4), 5, {"overdue_1": "skip:already_sent"}),
        # the final notice only after overdue_2 went out, min_gap_days after it
        (sent("overdue_1", 9) + sent("overdue_2", 2), 20, {"overdue_2": "skip:already_sent"}),
        (sent("overdue_1", 9) + sent("overdue_2", 3), 20, {"final_notice": "send"}),
        # repeats: repeat_every_days (7) after the last reminder sent, not days since due
        (
            sent("overdue_2", 20) + sent("final_notice", 6),
            40,
            {"final_notice": "skip:already_sent"},
        ),
        (sent("overdue_2", 20) + sent("final_notice", 7), 40, {"final_notice_r2": "send"}),
        (sent("final_notice", 14) + sent("final_notice_r2", 7), 60, {"final_notice_r3": "send"}),
        # after the last repeat (repeat_max 2), once the next would be due: escalated
        (
            sent("final_notice_r2", 13) + sent("final_notice_r3", 6),
            60,
            {"final_notice_r3": "skip:already_sent"},
        ),
        (
            sent("final_notice_r2", 14) + sent("final_notice_r3", 7),
            50,
            {"final_notice_r3": "skip:escalated"},
        ),
    ],
)
def test_the_ladder_climbs_one_rung_per_reminder_sent(ledger, days_overdue, expected):
    assert stages(portfolio(days_overdue=days_overdue, ledger=ledger)) == expected


def test_only_a_sent_reminder_counts_as_an_earlier_one():
    # overdue_1 was planned and skipped at claim time (a pause): it never went out, so ten
    # days later the customer still gets the first overdue wording, not "2nd reminder"
    skipped = [
        {
            "stage": "overdue_1",
            "channel": "email",
            "status": "skipped",
            "reason": "customer_paused",
            "planned_for": AS_OF - timedelta(days=10),
        }
    ]
    assert stages(portfolio(days_overdue=12, ledger=skipped)) == {"overdue_1": "send"}


def _raw_policy() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))


def _until_paid(cap: int = 40) -> Any:
    raw = _raw_policy()
    raw["ladder"].update(until_paid=True, escalate_after_days=cap)
    return parse_policy(raw, "until-paid")


def test_until_paid_repeats_every_n_days_until_the_cap_then_escalates():
    policy = _until_paid(cap=40)
    # far more repeats than repeat_max = 2: the count is not fixed
    ledger = sent("final_notice", 21) + sent("final_notice_r2", 14) + sent("final_notice_r3", 7)
    assert stages(portfolio(days_overdue=39, ledger=ledger), policy=policy) == {
        "final_notice_r4": "send"
    }
    # at the cap (40 days overdue) no repeat goes out; once it would have been due: escalated
    assert stages(portfolio(days_overdue=40, ledger=ledger), policy=policy) == {
        "final_notice_r3": "skip:escalated"
    }


def test_until_paid_needs_a_cap():
    raw = _raw_policy()
    raw["ladder"]["until_paid"] = True
    with pytest.raises(PolicyError, match="ladder.until_paid"):
        parse_policy(raw, "bad")
    raw["ladder"].update(escalate_after_days=5)
    with pytest.raises(PolicyError, match="ladder.escalate_after_days"):
        parse_policy(raw, "bad")
    raw["ladder"].update(escalate_after_days=60, min_gap_days=0)
    with pytest.raises(PolicyError, match="ladder.min_gap_days"):
        parse_policy(raw, "bad")


def test_the_min_gap_is_policy():
    quick = replace(POLICY, ladder=replace(POLICY.ladder, min_gap_days=1))
    p = portfolio(days_overdue=20, ledger=sent("overdue_1", 1))
    assert stages(p, policy=quick) == {"overdue_2": "send"}


def test_first_contact_case_runs_as_wanted():
    """../shared/cases/first-contact: two invoices first seen weeks after their due date,
    run on 2026-11-03, -04, -10, -17 and -24 at 16:00 UTC (10:00 in Chicago)."""
    customers = [
        {"customer_id": c, "country": "US", "timezone": "America/Chicago", "locale": "en_US"}
        for c in ("C-91", "C-92")
    ]
    invoices = [
        {
            "invoice_id": 1,
            "invoice_number": "INV-CU-1",
            "customer_id": "C-91",
            "currency": "USD",
            "amount_minor": 50000,
            "due_on": pd.Timestamp("2026-10-15").date(),
        },
        {
            "invoice_id": 2,
            "invoice_number": "INV-CU-2",
            "customer_id": "C-92",
            "currency": "USD",
            "amount_minor": 70000,
            "due_on": pd.Timestamp("2026-10-01").date(),
        },
    ]
    ledger: list[dict[str, Any]] = []
    got: dict[str, list[tuple[str, str, int]]] = {"INV-CU-1": [], "INV-CU-2": []}
    for day in (
        "2026-11-03",
        "2026-11-04",
        "2026-11-10",
        "2026-11-17",
        "2026-11-24",
        "2026-12-01",
        "2026-12-08",
        "2026-12-15",
    ):
        at = datetime.fromisoformat(f"{day}T16:00:00").replace(tzinfo=UTC)
        lines = plan(build_portfolio(customers, invoices, ledger=ledger), at, POLICY)
        lines = lines.loc[lines["channel"] == "email"]
        for row in lines.to_dict("records"):
            outcome = "send" if row["action"] == "send" else f"{row['action']}:{row['reason']}"
            got[row["invoice_number"]].append(
                (day, f"{row['stage']}:{outcome}", row["days_overdue"])
            )
            if row["action"] == "send":
                ledger += [
                    {
                        "invoice_id": row["invoice_id"],
                        "stage": str(row["stage"]),
                        "channel": ch,
                        "status": "delivered",
                        "planned_for": at,
                        "sent_at": at,
                    }
                    for ch in ("email", "sms")
                ]
    assert got["INV-CU-2"] == [
        ("2026-11-03", "overdue_1:send", 33),  # the first contact, with the true days overdue
        ("2026-11-04", "overdue_1:skip:already_sent", 34),  # min_gap_days
        ("2026-11-10", "overdue_2:send", 40),
        ("2026-11-17", "final_notice:send", 47),
        ("2026-11-24", "final_notice_r2:send", 54),  # repeats continue while 700 USD are open
        ("2026-12-01", "final_notice_r3:send", 61),  # (at_risk from 61 days: repeat every 4)
        ("2026-12-08", "final_notice_r4:send", 68),
        ("2026-12-15", "final_notice_r4:skip:escalated", 75),  # not silent: escalated
    ]
    assert got["INV-CU-1"][:5] == [
        ("2026-11-03", "overdue_1:send", 19),
        ("2026-11-04", "overdue_1:skip:already_sent", 20),
        ("2026-11-10", "overdue_2:send", 26),
        ("2026-11-17", "final_notice:send", 33),
        ("2026-11-24", "final_notice_r2:send", 40),
    ]


def _customer_with_invoices(n: int, ledger: list[dict] | None = None) -> Any:
    cust = {"customer_id": "c1", "country": "DE", "timezone": "Europe/Berlin", "locale": "de_DE"}
    invoices = [
        {
            "invoice_id": i,
            "invoice_number": f"INV-{i}",
            "customer_id": "c1",
            "amount_minor": 10000,
            "due_on": AS_OF.date() - timedelta(days=2 + i),
        }
        for i in range(1, n + 1)
    ]
    return build_portfolio([cust], invoices, ledger=ledger)


def _sms(lines: pd.DataFrame) -> dict[str, str]:
    sms = lines.loc[lines["channel"] == "sms"]
    return {r["invoice_number"]: f"{r['action']}:{r['reason']}" for r in sms.to_dict("records")}


def test_one_sms_per_customer_per_day_across_invoices_the_rest_deferred():
    lines = plan(_customer_with_invoices(3), AS_OF, POLICY)
    # the most overdue invoice's SMS goes; the others wait for tomorrow's window (09:00 Berlin)
    assert _sms(lines) == {
        "INV-3": "send:",
        "INV-2": "defer:sms_daily_cap",
        "INV-1": "defer:sms_daily_cap",
    }
    deferred = lines.loc[(lines["channel"] == "sms") & (lines["action"] == "defer")]
    assert set(deferred["not_before"]) == {pd.Timestamp("2026-11-25 08:00", tz="UTC")}
    # every email still goes out
    assert set(lines.loc[lines["channel"] == "email", "action"]) == {"send"}


def test_an_sms_sent_earlier_today_counts_toward_the_cap_and_the_cap_is_policy():
    sent_today = [
        {
            "invoice_id": 3,
            "stage": "overdue_1",
            "channel": "sms",
            "status": "sent",
            "planned_for": AS_OF - timedelta(hours=1),
        }
    ]
    lines = plan(_customer_with_invoices(3, sent_today), AS_OF, POLICY)
    assert _sms(lines)["INV-2"] == "defer:sms_daily_cap"
    two = replace(POLICY, max_sms_per_customer_per_day=2)
    assert _sms(plan(_customer_with_invoices(3, sent_today), AS_OF, two))["INV-2"] == "send:"
    tomorrow = AS_OF + timedelta(days=1)
    assert _sms(plan(_customer_with_invoices(3, sent_today), tomorrow, POLICY))["INV-2"] == "send:"


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"max_sms_per_customer_per_day": 0}, "max_sms_per_customer_per_day"),
        ({"max_sms_per_customer_per_day": "one"}, "max_sms_per_customer_per_day"),
        ({"consolidate": "household"}, "consolidate"),
        ({"consolidate": True}, "consolidate"),
        ({"segments": {"consolidate": {"at_risk": "Customer"}}}, "segments.consolidate.at_risk"),
    ],
)
def test_message_limits_are_validated(change, key):
    with pytest.raises(PolicyError, match=f"key '{key}'") as info:
        parse_policy(_raw_policy() | change, "bad")
    assert (
        "['invoice', 'customer']" in str(info.value)
        or "at least 1" in str(info.value)
        or ("integer" in str(info.value))
    )
    assert POLICY.max_sms_per_customer_per_day == 1 and POLICY.consolidate == "invoice"


def test_consolidate_is_a_top_level_key_overridable_per_segment():
    policy = parse_policy(
        _raw_policy() | {"consolidate": "customer", "segments": {"consolidate": {"new": "invoice"}}}
    )
    assert policy.consolidate == "customer"
    assert policy.consolidate_for("new") == "invoice"
    assert policy.consolidate_for("at_risk") == "customer"
    per_segment = parse_policy(
        _raw_policy() | {"segments": {"consolidate": {"at_risk": "customer"}}}
    )
    assert per_segment.consolidate_for("at_risk") == "customer"
    assert per_segment.consolidate_for("reliable") == "invoice"

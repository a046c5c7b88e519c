"""The one skip rule set: its vectorised form (the planner) and its scalar form (the ledger's
claim re-check) agree on random inputs."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dunning.core.skip import (
    CLAIM_RULES,
    RULES,
    SkipReason,
    day,
    first_reason,
    first_reasons,
)
from dunning.ledger.claim import claim_facts

SETTINGS = settings(max_examples=150, deadline=None)
TODAY = date(2026, 11, 30)
_FLAGS = (
    "email_opt_out",
    "sms_opt_out",
    "sms_consent",
    "voice_opt_out",
    "voice_consent",
)
_PLAN_ONLY_FLAGS = (
    "in_ladder",
    "escalated",
    "done",
    "failed_today",
    "reminded_today",
    "called_today",
    "not_mobile",
)
# Dates around today (before, on, after) or none: every comparison a rule makes is exercised.
dates = st.none() | st.integers(-2, 2).map(lambda d: TODAY + timedelta(days=d))


@st.composite
def raw_rows(draw: st.DrawFn) -> dict[str, Any]:
    """One claimed reminder as the claim's query returns it, with the balance and minimum in
    minor units (cents) and the planner-only facts."""
    row: dict[str, Any] = {
        "status": draw(st.sampled_from(["open", "open", "paid", "void", "disputed"])),
        "balance_minor": draw(st.integers(-200, 500)),
        "minimum_minor": draw(st.sampled_from([0, 100, 250])),
        "c_paused": draw(dates),
        "i_paused": draw(dates),
        "promise_to_pay_on": draw(dates),
        "channel": draw(st.sampled_from(["email", "sms", "voice"])),
        "email": draw(st.sampled_from([None, "", "a@example.com"])),
        "email_invalid": draw(st.booleans()),
        "phone": draw(st.sampled_from([None, "", "+14155550100"])),
        "code": draw(st.integers(0, 5)),
        "max_done": draw(st.integers(-1, 5)),
    }
    row |= {flag: draw(st.booleans()) for flag in _FLAGS + _PLAN_ONLY_FLAGS}
    return row


def _arrays(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The facts of ``rows`` as the planner builds them: one array per fact, integer minor
    units, ``datetime64[D]`` dates with NaT for none."""

    def col(key: str, dtype: Any = None) -> np.ndarray:
        return np.array([r[key] for r in rows], dtype=dtype)

    def dates_of(key: str) -> np.ndarray:
        return np.array([day(r[key]) for r in rows], dtype="datetime64[D]")

    channel = col("channel", object)
    facts: dict[str, np.ndarray] = {
        "status": col("status", object),
        "balance": col("balance_minor", np.int64),
        "minimum": col("minimum_minor", np.int64),
        "today": np.full(len(rows), np.datetime64(TODAY, "D")),
        "customer_paused_until": dates_of("c_paused"),
        "invoice_paused_until": dates_of("i_paused"),
        "promise_to_pay_on": dates_of("promise_to_pay_on"),
        "email": channel == "email",
        "sms": channel == "sms",
        "voice": channel == "voice",
        "has_email": np.array([bool(r["email"]) and not r["email_invalid"] for r in rows]),
        "has_phone": np.array([bool(r["phone"]) for r in rows]),
        "code": col("code", np.int64),
        "max_done": col("max_done", np.int64),
    }
    facts |= {flag: col(flag, bool) for flag in _FLAGS + _PLAN_ONLY_FLAGS}
    return facts


@SETTINGS
@given(st.lists(raw_rows(), min_size=1, max_size=30))
def test_claim_recheck_agrees_with_the_vectorised_rules(rows: list[dict[str, Any]]) -> None:
    """The ledger's scalar re-check (claim_facts of the claim's row, Decimal amounts, dates)
    gives, row by row, what the vectorised rules give the planner's arrays."""
    vectorised = first_reasons(_arrays(rows), CLAIM_RULES)
    for row, expected in zip(rows, vectorised, strict=True):
        facts = claim_facts(
            row,
            Decimal(row["balance_minor"]).scaleb(-2),
            Decimal(row["minimum_minor"]).scaleb(-2),
            TODAY,
        )
        got = first_reason(facts)
        assert (str(got) if got is not None else "") == expected, row


@SETTINGS
@given(st.lists(raw_rows(), min_size=1, max_size=30))
def test_scalar_and_vectorised_agree_on_every_rule(rows: list[dict[str, Any]]) -> None:
    """With the planner-only rules too: each line's scalar answer is its vectorised one."""
    facts = _arrays(rows)
    vectorised = first_reasons(facts, RULES)
    for i, expected in enumerate(vectorised):
        one = {name: values[i] for name, values in facts.items()}
        got = first_reason(one, RULES)
        assert (str(got) if got is not None else "") == expected


def test_the_rules_follow_the_order_of_skip_reason() -> None:
    """SkipReason lists the reasons in the order the rules first use them, before the
    reasons other steps write (the window, experiments, freshness, the ledger)."""
    first_use = list(dict.fromkeys(rule.reason for rule in RULES))
    assert first_use == list(SkipReason)[: len(first_use)]
    assert not {rule.reason for rule in RULES} & set(list(SkipReason)[len(first_use) :])
    assert [r.reason for r in CLAIM_RULES if not r.at_claim] == []


def test_claim_skips_what_a_plan_would_skip_for_the_invoice_and_customer() -> None:
    """Examples of the claim re-check: a fully paid invoice, a pause ending today, a
    promise for today, a customer without consent."""
    base: dict[str, Any] = {
        "status": "open",
        "c_paused": None,
        "i_paused": None,
        "promise_to_pay_on": None,
        "channel": "sms",
        "email": "a@example.com",
        "email_invalid": False,
        "phone": "+14155550100",
        **dict.fromkeys(_FLAGS, False),
        "sms_consent": True,
    }

    def reason(balance: str = "10.00", **change: Any) -> SkipReason | None:
        facts = claim_facts(base | change, Decimal(balance), Decimal("1.00"), TODAY)
        return first_reason(facts)

    assert reason() is None
    assert reason("0.00") == SkipReason.PAID
    assert reason("0.00", status="disputed") == SkipReason.PAID
    assert reason("0.50") == SkipReason.BALANCE_BELOW_MINIMUM
    assert reason(c_paused=TODAY) is None  # paused until today: today it may go out
    assert reason(i_paused=TODAY + timedelta(days=1)) == SkipReason.INVOICE_PAUSED
    assert reason(promise_to_pay_on=TODAY) == SkipReason.PROMISE_TO_PAY
    assert reason(sms_consent=False) == SkipReason.NO_SMS_CONSENT
    assert reason(channel="email", email_invalid=True) == SkipReason.MISSING_EMAIL
    assert reason(channel="voice") == SkipReason.NO_VOICE_CONSENT

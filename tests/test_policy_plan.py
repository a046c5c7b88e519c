"""Table tests of the planner's rules: ladder, catch-up, balances, pauses, promises, channels."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.policy_support import AS_OF, TODAY, actions, lines, portfolio

SENT = {"status": "sent", "sent_at": AS_OF - timedelta(days=1)}


FIRST_OVERDUE = {("overdue_1", "email"): "send", ("overdue_1", "sms"): "send"}


@pytest.mark.parametrize(
    ("days_overdue", "expected"),
    [
        (-4, {}),
        (-3, {("pre_due", "email"): "send"}),
        (-1, {("pre_due", "email"): "send"}),
        (0, {("due", "email"): "send", ("due", "sms"): "send"}),
        (1, FIRST_OVERDUE),
        (5, FIRST_OVERDUE),
        # never reminded: the first contact of an overdue invoice is overdue_1, however late
        (6, FIRST_OVERDUE),
        (11, FIRST_OVERDUE),
        (18, FIRST_OVERDUE),
        (50, FIRST_OVERDUE),
    ],
)
def test_first_contact_is_the_reached_courtesy_stage_or_overdue_1(days_overdue, expected):
    assert actions(portfolio(days_overdue=days_overdue)) == expected


def test_first_contact_carries_the_true_days_overdue():
    row = lines(portfolio(days_overdue=33))[("overdue_1", "email")]
    assert (row["days_overdue"], row["tone"]) == (33, "neutral")


def test_plan_line_carries_tone_segment_days_and_as_of():
    p = portfolio(
        days_overdue=6,
        ledger=[
            {
                "stage": "overdue_1",
                "channel": "email",
                "status": "sent",
                "sent_at": AS_OF - timedelta(days=5),
            }
        ],
    )
    row = lines(p)[("overdue_2", "email")]
    assert (row["segment"], row["tone"], row["days_overdue"], row["reason"]) == (
        "new",
        "firm",
        6,
        "",
    )
    assert row["not_before"] == AS_OF


def test_sent_stage_is_not_planned_again_but_open_planned_row_is():
    p = portfolio(
        days_overdue=2,
        ledger=[
            {"stage": "overdue_1", "channel": "email", **SENT},
            {
                "stage": "overdue_1",
                "channel": "sms",
                "status": "planned",
                "planned_at": AS_OF - timedelta(hours=1),
            },
        ],
    )
    assert actions(p) == {("overdue_1", "email"): "skip:already_sent", ("overdue_1", "sms"): "send"}


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        ("claimed", None, "skip:already_sent"),
        ("bounced", None, "skip:already_sent"),
        ("unknown", None, "skip:already_sent"),
        # never reached the customer: not consumed, planned again
        ("failed_permanent", "template_error", "send"),
        ("skipped", "customer_paused", "send"),
        # an operator's decision consumes the stage
        ("skipped", "operator: settled by phone", "skip:already_sent"),
    ],
)
def test_only_a_reminder_that_went_out_or_an_operator_decision_consumes_a_stage(
    status, reason, expected
):
    p = portfolio(
        days_overdue=2,
        ledger=[
            {
                "stage": "overdue_1",
                "channel": "email",
                "status": status,
                "reason": reason,
                "planned_at": AS_OF - timedelta(days=1),
            }
        ],
    )
    assert actions(p)[("overdue_1", "email")] == expected


def test_a_permanent_failure_is_retried_from_the_next_local_day():
    failed = {
        "stage": "overdue_1",
        "channel": "email",
        "status": "failed_permanent",
        "reason": "template_error",
        "planned_for": AS_OF - timedelta(hours=2),
    }
    p = portfolio(days_overdue=2, ledger=[failed])
    assert actions(p) == {("overdue_1", "email"): "skip:failed_today", ("overdue_1", "sms"): "send"}
    assert actions(p, as_of=AS_OF + timedelta(days=1))[("overdue_1", "email")] == "send"


def test_a_failed_overdue_1_does_not_move_the_ladder_on():
    # overdue_1 never reached the customer: ten days later it is still the first contact
    failed = [
        {
            "stage": "overdue_1",
            "channel": ch,
            "status": "failed_permanent",
            "planned_for": AS_OF - timedelta(days=10),
        }
        for ch in ("email", "sms")
    ]
    assert actions(portfolio(days_overdue=12, ledger=failed)) == FIRST_OVERDUE


def test_the_other_channel_of_the_last_stage_sent_may_still_go_out():
    # overdue_2 went out by SMS only (e.g. under a faster ladder); final_notice is not reached
    p = portfolio(days_overdue=3, ledger=[{"stage": "overdue_2", "channel": "sms", **SENT}])
    assert actions(p) == {
        ("overdue_2", "email"): "send",
        ("overdue_2", "sms"): "skip:already_sent",
    }


def test_lower_stage_is_never_planned_after_a_higher_one_may_have_gone_out():
    # overdue_2 may have gone out (unknown): the ladder does not climb on it, nor go back
    p = portfolio(
        days_overdue=8,
        ledger=[
            {
                "stage": "overdue_1",
                "channel": "email",
                "status": "sent",
                "sent_at": AS_OF - timedelta(days=1),
            },
            {
                "stage": "overdue_2",
                "channel": "email",
                "status": "unknown",
                "planned_for": AS_OF - timedelta(hours=20),
            },
        ],
    )
    assert actions(p) == {
        ("overdue_1", "email"): "skip:higher_stage_sent",
        ("overdue_1", "sms"): "skip:higher_stage_sent",
    }


def test_first_contact_when_overdue_is_overdue_1_even_after_pre_due():
    p = portfolio(days_overdue=12, ledger=[{"stage": "pre_due", "channel": "email", **SENT}])
    assert actions(p) == FIRST_OVERDUE


@pytest.mark.parametrize(
    ("currency", "amount", "paid", "expected"),
    [
        ("EUR", 10000, 9950, "skip:balance_below_minimum"),  # 0.50 left
        ("EUR", 10000, 9900, "skip:balance_below_minimum"),  # exactly 1.00: at the minimum
        ("EUR", 10000, 9899, "send"),  # 1.01 left
        ("EUR", 10000, 10000, "skip:paid"),  # fully paid, even while still "open"
        ("EUR", 10000, 10500, "skip:paid"),  # overpaid
        ("JPY", 10000, 9900, "skip:balance_below_minimum"),  # 100 yen: the JPY minimum
        ("JPY", 10000, 9899, "send"),
        ("BHD", 10000, 9000, "skip:balance_below_minimum"),  # 1.000 BHD (3 decimals)
        ("BHD", 10000, 8999, "send"),
    ],
)
def test_partial_payments_against_per_currency_minimum(currency, amount, paid, expected):
    p = portfolio(
        invoice={"currency": currency, "amount_minor": amount, "paid_minor": paid}, days_overdue=1
    )
    assert actions(p)[("overdue_1", "email")] == expected


@pytest.mark.parametrize(
    ("status", "ledger", "expected"),
    [
        (
            "disputed",
            [],
            {("overdue_1", "email"): "skip:disputed", ("overdue_1", "sms"): "skip:disputed"},
        ),
        ("paid", [], {}),  # settled invoices are not part of the plan ...
        (
            "paid",
            [
                {
                    "stage": "overdue_1",
                    "channel": "email",
                    "status": "planned",
                    "planned_at": AS_OF - timedelta(hours=2),
                }
            ],  # ... unless a planned row waits
            {("overdue_1", "email"): "skip:paid", ("overdue_1", "sms"): "skip:paid"},
        ),
        (
            "void",
            [
                {
                    "stage": "overdue_1",
                    "channel": "email",
                    "status": "planned",
                    "planned_at": AS_OF - timedelta(hours=2),
                }
            ],
            {("overdue_1", "email"): "skip:void", ("overdue_1", "sms"): "skip:void"},
        ),
    ],
)
def test_paid_void_and_disputed_invoices_are_skipped(status, ledger, expected):
    assert actions(portfolio(invoice={"status": status}, days_overdue=1, ledger=ledger)) == expected


@pytest.mark.parametrize(
    ("customer", "invoice", "expected"),
    [
        ({"paused_until": TODAY + timedelta(days=1)}, {}, "skip:customer_paused"),
        ({"paused_until": TODAY}, {}, "send"),  # the pause ends on that day
        ({}, {"paused_until": TODAY + timedelta(days=3)}, "skip:invoice_paused"),
        ({}, {"promise_to_pay_on": TODAY + timedelta(days=2)}, "skip:promise_to_pay"),
        ({}, {"promise_to_pay_on": TODAY}, "skip:promise_to_pay"),  # the promised day itself
    ],
)
def test_pauses_and_promises_hold_reminders(customer, invoice, expected):
    assert actions(portfolio(customer, invoice, days_overdue=2))[("overdue_1", "email")] == expected


def test_broken_promise_gets_one_reminder_the_day_after():
    p = portfolio(
        invoice={"promise_to_pay_on": TODAY - timedelta(days=1)},
        days_overdue=8,
        ledger=[
            {
                "stage": "overdue_1",
                "channel": "email",
                "status": "sent",
                "sent_at": AS_OF - timedelta(days=6),
            }
        ],
    )
    assert actions(p) == {("promise_broken", "email"): "send", ("promise_broken", "sms"): "send"}
    row = lines(p)[("promise_broken", "email")]
    assert row["tone"] == "firm"


def test_after_the_broken_promise_reminder_the_ladder_resumes():
    p = portfolio(
        invoice={"promise_to_pay_on": TODAY - timedelta(days=3)},
        days_overdue=8,
        ledger=[{"stage": "promise_broken", "channel": "email", **SENT}],
    )
    assert actions(p) == FIRST_OVERDUE


def test_customer_who_opted_out_of_sms_only_still_gets_email():
    p = portfolio({"sms_opt_out": True}, days_overdue=0)
    assert actions(p) == {("due", "email"): "send", ("due", "sms"): "skip:sms_opt_out"}


@pytest.mark.parametrize(
    ("customer", "expected"),
    [
        ({"sms_consent": False}, {("due", "email"): "send", ("due", "sms"): "skip:no_sms_consent"}),
        ({"has_phone": False}, {("due", "email"): "send", ("due", "sms"): "skip:missing_phone"}),
        ({"has_email": False}, {("due", "email"): "skip:missing_email", ("due", "sms"): "send"}),
        ({"email_opt_out": True}, {("due", "email"): "skip:email_opt_out", ("due", "sms"): "send"}),
    ],
)
def test_channel_consent_and_contacts(customer, expected):
    assert actions(portfolio(customer, days_overdue=0)) == expected


def test_failed_payment_attempt_newer_than_last_reminder_asks_to_update_payment_method():
    p = portfolio(
        days_overdue=3,
        ledger=[
            {
                "stage": "overdue_1",
                "channel": "email",
                "status": "sent",
                "sent_at": AS_OF - timedelta(days=2),
            }
        ],
        attempts=[{"invoice_id": 1, "attempted_at": AS_OF - timedelta(days=1)}],
    )
    assert actions(p) == {("payment_failed", "email"): "send", ("payment_failed", "sms"): "send"}
    assert lines(p)[("payment_failed", "email")]["tone"] == "helpful"


@pytest.mark.parametrize(
    ("attempts", "ledger"),
    [
        # attempt older than the last reminder
        (
            [{"invoice_id": 1, "attempted_at": AS_OF - timedelta(days=3)}],
            [
                {
                    "stage": "overdue_1",
                    "channel": "email",
                    "status": "sent",
                    "sent_at": AS_OF - timedelta(days=2),
                }
            ],
        ),
        # payment_failed already sent once
        (
            [{"invoice_id": 1, "attempted_at": AS_OF - timedelta(hours=5)}],
            [
                {
                    "stage": "payment_failed",
                    "channel": "email",
                    "status": "sent",
                    "sent_at": AS_OF - timedelta(days=2),
                }
            ],
        ),
        # a later charge succeeded
        (
            [
                {"invoice_id": 1, "attempted_at": AS_OF - timedelta(days=2)},
                {
                    "invoice_id": 1,
                    "attempted_at": AS_OF - timedelta(days=1),
                    "outcome": "succeeded",
                },
            ],
            [],
        ),
    ],
)
def test_payment_failed_only_once_and_only_when_news(attempts, ledger):
    assert set(actions(portfolio(days_overdue=3, attempts=attempts, ledger=ledger))) == {
        ("overdue_1", "email"),
        ("overdue_1", "sms"),
    }


def test_reliable_segment_gets_no_sms_before_it_is_late():
    p = portfolio(days_overdue=0, paid_history=5)
    assert lines(p)[("due", "email")]["segment"] == "reliable"
    assert actions(p) == {("due", "email"): "send"}


def test_at_risk_segment_escalates_faster():
    p = portfolio(
        days_overdue=7,
        attempts=[{"invoice_id": 1000, "attempted_at": AS_OF - timedelta(days=30)}],
        paid_history=5,
        ledger=[
            {
                "stage": st,
                "channel": "email",
                "status": "sent",
                "sent_at": AS_OF - timedelta(days=d),
            }
            for st, d in (("overdue_1", 6), ("overdue_2", 3))
        ],
    )
    got = lines(p)
    assert got[("final_notice", "email")]["segment"] == "at_risk"
    assert set(got) == {("final_notice", "email"), ("final_notice", "sms")}


def test_chronic_late_segment_gets_an_earlier_pre_due_and_sms_at_due():
    chronic = portfolio(days_overdue=-5, paid_history=5, days_late=20)
    assert {k: r["segment"] for k, r in lines(chronic).items()} == {
        ("pre_due", "email"): "chronic_late"
    }
    assert actions(portfolio(days_overdue=0, paid_history=5, days_late=20)) == {
        ("due", "email"): "send",
        ("due", "sms"): "send",
    }


def test_repeat_beyond_the_current_policy_still_blocks_lower_stages():
    # final_notice_r9 was sent under an older policy with more repeats.
    p = portfolio(
        days_overdue=12, ledger=[{"stage": "final_notice_r9", "channel": "email", **SENT}]
    )
    assert actions(p) == {
        ("final_notice_r3", "email"): "skip:higher_stage_sent",
        ("final_notice_r3", "sms"): "skip:higher_stage_sent",
    }


def test_one_reminder_per_invoice_per_local_day_so_a_rerun_sends_nothing_new():
    # payment_failed went out this morning; the ladder stage is due too but waits a day
    sent_today = [
        {
            "stage": "payment_failed",
            "channel": ch,
            "status": "sent",
            "sent_at": AS_OF - timedelta(hours=1),
        }
        for ch in ("email", "sms")
    ]
    attempts = [{"invoice_id": 1, "attempted_at": AS_OF - timedelta(hours=5)}]
    p = portfolio(days_overdue=3, attempts=attempts, ledger=sent_today)
    assert actions(p) == {
        ("overdue_1", "email"): "skip:reminded_today",
        ("overdue_1", "sms"): "skip:reminded_today",
    }
    tomorrow = AS_OF + timedelta(days=1)
    nxt = actions(p, as_of=tomorrow)
    assert set(nxt.values()) == {"send"} and {s for s, _ in nxt} != {"payment_failed"}


def test_a_reminder_that_failed_to_go_out_does_not_count_as_reminded_today():
    failed = [
        {
            "stage": "payment_failed",
            "channel": "email",
            "status": "failed_permanent",
            "sent_at": None,
            "claimed_at": AS_OF - timedelta(hours=1),
        }
    ]
    attempts = [{"invoice_id": 1, "attempted_at": AS_OF - timedelta(hours=5)}]
    p = portfolio(days_overdue=3, attempts=attempts, ledger=failed)
    # nothing reached the customer today: the failed reminder is not consumed (its email is
    # retried tomorrow), and its SMS goes out now
    assert actions(p) == {
        ("payment_failed", "email"): "skip:failed_today",
        ("payment_failed", "sms"): "send",
    }


def test_the_same_stage_on_its_other_channel_still_goes_out_the_same_day():
    # the email of overdue_1 went out; its SMS was left planned (provider outage, crash)
    ledger = [
        {
            "stage": "overdue_1",
            "channel": "email",
            "status": "sent",
            "sent_at": AS_OF - timedelta(hours=1),
        },
        {
            "stage": "overdue_1",
            "channel": "sms",
            "status": "planned",
            "planned_at": AS_OF - timedelta(hours=1),
        },
    ]
    p = portfolio(days_overdue=3, ledger=ledger)
    assert actions(p) == {
        ("overdue_1", "email"): "skip:already_sent",
        ("overdue_1", "sms"): "send",
    }

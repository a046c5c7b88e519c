"""The planner's voice rules: consent, opt-out, the voice window, holidays and one call per
customer per day, under the example policy that calls at_risk customers at the final notice."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from dunning.config import reload_settings
from dunning.core.portfolio import build_portfolio
from dunning.errors import PolicyError
from dunning.policy import load_policy, plan
from dunning.policy.loader import parse_policy
from dunning.policy.model import DEFAULT_VOICE_WINDOW
from tests.policy_support import AS_OF, POLICY, TODAY, actions, portfolio

EXAMPLE = load_policy(Path(__file__).resolve().parent.parent / "examples" / "policy_voice.toml")
# A large overdue balance (5,000 EUR) makes the customer at_risk; the final notice is day 7.
AT_RISK = {"amount_minor": 600_000}
CALLABLE = {"voice_consent": True, "phone": "+4915112345678"}


def climbed(as_of=AS_OF, invoice_id=1):
    """Ledger rows of overdue_1 and overdue_2 sent 6 and 3 days before ``as_of``: the final
    notice comes only after earlier reminders went out (docs/policy.md, Ladder semantics)."""
    return [
        {
            "invoice_id": invoice_id,
            "stage": stage,
            "channel": "email",
            "status": "sent",
            "planned_for": as_of - timedelta(days=days),
            "sent_at": as_of - timedelta(days=days),
        }
        for stage, days in (("overdue_1", 6), ("overdue_2", 3))
    ]


def voice_actions(customer=None, invoice=None, as_of=AS_OF, **kw):
    p = portfolio(
        CALLABLE | (customer or {}),
        AT_RISK | (invoice or {}),
        days_overdue=7,
        ledger=climbed(as_of),
        **kw,
    )
    return {k: v for k, v in actions(p, as_of, EXAMPLE).items() if k[1] == "voice"}


def test_the_default_policy_calls_nobody():
    p = portfolio(CALLABLE, AT_RISK, days_overdue=7)
    assert not [k for k in actions(p) if k[1] == "voice"]
    assert POLICY.voice_window == DEFAULT_VOICE_WINDOW


def test_the_example_policy_calls_at_risk_customers_at_the_final_notice():
    assert voice_actions() == {("final_notice", "voice"): "send"}
    small = portfolio(
        CALLABLE, {"amount_minor": 10_000}, days_overdue=7, ledger=climbed()
    )  # not at_risk
    assert not [k for k in actions(small, AS_OF, EXAMPLE) if k[1] == "voice"]


@pytest.mark.parametrize(
    ("customer", "expected"),
    [
        ({"voice_consent": False}, "skip:no_voice_consent"),
        ({"voice_opt_out": True}, "skip:voice_opt_out"),
        ({"has_phone": False}, "skip:missing_phone"),
        ({"sms_consent": False}, "send"),  # SMS consent is not voice consent, nor needed
    ],
)
def test_a_call_needs_voice_consent_no_opt_out_and_a_phone(customer, expected):
    assert voice_actions(customer) == {("final_notice", "voice"): expected}


def test_calls_keep_the_stricter_voice_window_while_messages_go_out():
    early = datetime(2026, 11, 24, 8, 30, tzinfo=UTC)  # 09:30 in Berlin
    p = portfolio(CALLABLE, AT_RISK, days_overdue=7, ledger=climbed())
    got = actions(p, early, EXAMPLE)
    assert got[("final_notice", "email")] == "send"
    assert got[("final_notice", "voice")] == "defer:outside_send_window"
    line = plan(p, early, EXAMPLE).query("channel == 'voice'").iloc[0]
    assert line["not_before"] == pd.Timestamp("2026-11-24 09:00", tz="UTC")  # 10:00 Berlin
    late = datetime(2026, 11, 24, 16, 30, tzinfo=UTC)  # 17:30 Berlin: next weekday 10:00
    line = plan(p, late, EXAMPLE).query("channel == 'voice'").iloc[0]
    assert (line["action"], line["not_before"]) == (
        "defer",
        pd.Timestamp("2026-11-25 09:00", tz="UTC"),
    )


def test_no_call_on_a_public_holiday():
    christmas = datetime(2026, 12, 25, 12, 0, tzinfo=UTC)  # a Friday
    p = portfolio(
        CALLABLE,
        AT_RISK | {"due_on": christmas.date() - timedelta(days=7)},
        ledger=climbed(christmas),
    )
    assert actions(p, christmas, EXAMPLE)[("final_notice", "voice")] == "defer:holiday"


def _two_invoices(ledger=None):
    cust = {
        "customer_id": "c1",
        "country": "DE",
        "timezone": "Europe/Berlin",
        "locale": "de_DE",
    } | CALLABLE
    due = TODAY - timedelta(days=7)
    invoices = [
        {
            "invoice_id": 1,
            "invoice_number": "INV-1",
            "customer_id": "c1",
            "amount_minor": 600_000,
            "due_on": due,
        },
        {
            "invoice_id": 2,
            "invoice_number": "INV-2",
            "customer_id": "c1",
            "amount_minor": 900_000,
            "due_on": due,
        },
    ]
    history = climbed(invoice_id=1) + climbed(invoice_id=2)
    return build_portfolio([cust], invoices, ledger=history + (ledger or []))


def test_one_call_per_customer_per_day_across_invoices():
    lines = plan(_two_invoices(), AS_OF, EXAMPLE).query("channel == 'voice'")
    got = dict(
        zip(
            lines["invoice_number"],
            lines["action"].astype(str) + ":" + lines["reason"],
            strict=True,
        )
    )
    # The call is about the larger balance; email and SMS still go out for both invoices.
    assert got == {"INV-2": "send:", "INV-1": "skip:one_call_per_day"}


@pytest.mark.parametrize(("hours_ago", "expected"), [(2, "skip:one_call_per_day"), (30, "send:")])
def test_a_call_earlier_today_about_another_invoice_holds_the_next_call(hours_ago, expected):
    called = {
        "invoice_id": 2,
        "stage": "final_notice",
        "channel": "voice",
        "status": "sent",
        "planned_for": AS_OF - timedelta(hours=hours_ago),
    }
    lines = plan(_two_invoices([called]), AS_OF, EXAMPLE).query("channel == 'voice'")
    got = {r.invoice_number: f"{r.action}:{r.reason}" for r in lines.itertuples()}
    assert got["INV-1"] == expected


def test_loader_accepts_voice_and_names_bad_voice_keys():
    base = {
        "ladder": {"stages": [{"name": "due", "offset_days": 0, "channels": ["email", "voice"]}]}
    }
    policy = parse_policy(
        base | {"voice_window": {"start": "11:00"}, "voice": {"retry_no_answer": True}}
    )
    assert policy.ladder.stages[0].channels == ("email", "voice")
    assert (policy.voice_window.start_minute, policy.voice_window.end_minute) == (660, 1020)
    assert policy.voice_retry_no_answer is True
    with pytest.raises(PolicyError, match="voice_window.end"):
        parse_policy(base | {"voice_window": {"start": "16:00", "end": "15:00"}})
    with pytest.raises(PolicyError, match="voice.retries"):
        parse_policy(base | {"voice": {"retries": 2}})
    with pytest.raises(PolicyError, match="channels"):
        parse_policy(
            {"ladder": {"stages": [{"name": "due", "offset_days": 0, "channels": ["fax"]}]}}
        )


def _missed(**row):
    return {
        "stage": "final_notice",
        "channel": "voice",
        "status": "undelivered",
        "call_outcome": "no-answer",
        "planned_for": AS_OF - timedelta(days=1),
    } | row


@pytest.mark.parametrize(
    ("ledger", "policy", "expected"),
    [
        ([_missed()], EXAMPLE, "send"),  # the example policy retries a no-answer once
        ([_missed()], replace(EXAMPLE, voice_retry_no_answer=False), None),
        ([_missed(call_outcome="busy")], EXAMPLE, None),  # only no-answer is retried
        ([_missed(call_outcome="completed", status="delivered")], EXAMPLE, None),
        ([_missed(planned_for=AS_OF - timedelta(hours=1))], EXAMPLE, "skip:one_call_per_day"),
        ([_missed(), _missed(stage="final_notice.retry", status="undelivered")], EXAMPLE, None),
    ],
)
def test_an_unanswered_call_is_retried_once_on_a_later_day(ledger, policy, expected):
    p = portfolio(CALLABLE, AT_RISK, days_overdue=7, ledger=ledger)
    got = actions(p, AS_OF, policy)
    assert got[("final_notice", "voice")] == "skip:already_sent"
    assert got.get(("final_notice.retry", "voice")) == expected


def test_plan_says_when_a_call_speaks_english(engine, monkeypatch):
    import json
    from decimal import Decimal

    from factories import add_customer, add_invoice
    from sqlalchemy import insert
    from typer.testing import CliRunner

    from dunning.cli import _load_commands, app
    from dunning.db.models import Reminder

    _load_commands()
    monkeypatch.setenv("DUNNING_POLICY_PATH", str(EXAMPLE.source))
    reload_settings()
    for cid, locale, country, zone in (
        ("SV", "sv_SE", "SE", "Europe/Stockholm"),
        ("DE", "de_DE", "DE", "Europe/Berlin"),
    ):
        add_customer(
            engine,
            cid,
            locale=locale,
            country=country,
            timezone=zone,
            phone="+46701234567" if cid == "SV" else "+4915112345678",
            voice_consent=True,
        )
        inv = add_invoice(
            engine,
            f"INV-{cid}",
            cid,
            currency="EUR",
            amount=Decimal("6000.00"),
            due_on=TODAY - timedelta(days=7),
        )
        # the final notice (and its call) only follows reminders that went out
        with engine.begin() as conn:
            conn.execute(
                insert(Reminder),
                [{**row, "customer_id": cid, "attempts": 1} for row in climbed(invoice_id=inv)],
            )
    result = CliRunner().invoke(app, ["plan", "--json", "--as-of", AS_OF.isoformat()])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    notes = {(x["customer_id"], x["channel"]): x["note"] for x in lines}
    assert notes[("SV", "voice")] == "no voice template in 'sv': the call speaks English"
    assert notes[("DE", "voice")] == "" and notes[("SV", "email")] == ""


def test_a_run_limited_to_the_final_notice_keeps_its_repeats_and_call_retries():
    from dunning.tasks.plan import select_lines

    p = portfolio(CALLABLE, AT_RISK, days_overdue=7, ledger=[_missed()])
    lines = plan(p, AS_OF, EXAMPLE)
    kept = select_lines(
        lines,
        channels=["voice"],
        segments=None,
        stages=["final_notice"],
        max_messages=None,
        as_of=AS_OF,
    )
    assert sorted(kept["stage"].astype(str)) == ["final_notice", "final_notice.retry"]
    assert select_lines(
        lines, channels=None, segments=None, stages=["due"], max_messages=None, as_of=AS_OF
    ).empty

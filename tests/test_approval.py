"""Approval before the loud part: a reminder run that is about to send a final notice or more
than DUNNING_APPROVAL_MAX_MESSAGES pauses with a form (Prefect's pause_flow_run +
wait_for_input); approved it sends, rejected it sends nothing. Driven through the API of a real
Prefect server, as the UI's Resume form does."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from dunning.approval import approval_reasons, approval_summary
from dunning.config import ApprovalSettings, reload_settings
from dunning.db.models import Reminder
from dunning.devtools.seed import seed_portfolio

AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


def _sends(n: int, stage: str = "due") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "invoice_number": [f"INV-{i:04d}" for i in range(n)],
            "customer_id": [f"CUST-{i:05d}" for i in range(n)],
            "segment": ["reliable" if i % 2 else "at_risk" for i in range(n)],
            "stage": [stage] * n,
            "channel": ["email" if i % 3 else "sms" for i in range(n)],
            "currency": ["EUR"] * n,
            "balance_minor": [100_00 + i * 1_00 for i in range(n)],
            "locale": ["en_US"] * n,
            "action": ["send"] * n,
        }
    )


def test_approval_is_asked_for_final_notices_and_large_runs_only_when_enabled() -> None:
    off = ApprovalSettings(enabled=False, max_messages=0)
    on = ApprovalSettings(enabled=True, max_messages=20)
    assert approval_reasons(_sends(30, "final_notice"), off) == []
    assert approval_reasons(_sends(5), on) == []
    assert approval_reasons(_sends(5, "final_notice"), on) == ["5 final notice(s)"]
    assert approval_reasons(_sends(21), on) == [
        "21 messages, more than DUNNING_APPROVAL_MAX_MESSAGES=20"
    ]
    repeats = pd.concat([_sends(2, "final_notice_r3"), _sends(1, "overdue_1")])
    assert approval_reasons(repeats, on) == ["2 final notice(s)"]
    no_finals = ApprovalSettings(enabled=True, final_notice=False, max_messages=20)
    assert approval_reasons(_sends(5, "final_notice"), no_finals) == []


def test_the_approval_form_shows_counts_and_the_ten_largest_balances_masked() -> None:
    sends = _sends(15)
    text = approval_summary(sends, ["15 messages"], 600)
    assert "**15 message(s)** to 15 invoice(s)" in text
    assert "| email | 10 |" in text and "| sms | 5 |" in text  # by channel
    assert "| at_risk | 8 |" in text and "| reliable | 7 |" in text  # by segment
    assert "| due | 15 |" in text  # by stage
    largest = text.split("largest balances")[1]
    assert "INV-0014" in largest and "€114.00" in largest  # the biggest first
    assert "INV-0004" not in largest  # only ten of them
    assert "CUST-00014" not in text and "CU***14" in largest  # ids masked
    assert "600 s" in text


def _paused_run(after: dt.datetime) -> Any:
    """The reminder flow run that paused after ``after`` (waits up to 120 s)."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    for _ in range(240):
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
                    start_time=FlowRunFilterStartTime(after_=after),
                )
            )
        if runs:
            return runs[0]
        time.sleep(0.5)
    raise AssertionError("no reminder run paused for approval within 120 s")


def _sent(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(Reminder.status == "sent")).scalar_one())


@pytest.mark.prefect
@pytest.mark.parametrize("decision", ["reject", "approve"])
def test_a_paused_run_is_approved_or_rejected_through_the_api(
    prefect_server, engine: Engine, monkeypatch: pytest.MonkeyPatch, decision: str
) -> None:
    from prefect.flow_runs import resume_flow_run
    from prefect.input.actions import read_flow_run_input

    from dunning.flows.payment_reminders import payment_reminders

    seed_portfolio(engine, 20, 40, 7, AS_OF.date())
    monkeypatch.setenv("DUNNING_APPROVAL_ENABLED", "true")
    monkeypatch.setenv("DUNNING_APPROVAL_MAX_MESSAGES", "0")
    reload_settings()
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    states: list[Any] = []
    runner = threading.Thread(
        target=lambda: states.append(payment_reminders(as_of=AS_OF, return_state=True))
    )
    runner.start()
    try:
        paused = _paused_run(started)
        # Nothing is recorded or sent while the run waits for a person.
        assert _sent(engine) == 0
        keyset = paused.state.state_details.run_input_keyset
        # Prefect proposes the Paused state first and stores the form (schema, then
        # description) after it: wait for the description, as the UI does.
        description = None
        for _ in range(120):
            description = read_flow_run_input(keyset["description"], flow_run_id=paused.id)
            if description is not None:
                break
            time.sleep(0.5)
        assert description is not None, "the approval form was not stored within 60 s"
        assert "Approve this reminder run?" in description and "#### By segment" in description
        assert "@" not in description  # no email addresses on the form
        note = "checked with finance, jane@example.com"
        resume_flow_run(paused.id, run_input={"decision": decision, "note": note})
    finally:
        runner.join(timeout=300)
    [state] = states
    if decision == "reject":
        assert state.is_cancelled(), state
        assert state.message.startswith("rejected by the approver (checked with finance, j***@")
        assert "nothing sent" in state.message
        assert _sent(engine) == 0
    else:
        assert state.is_completed(), state
        assert _sent(engine) > 0

"""What customers receive, end to end on the reminder flow: first contact and repeats
(../shared/cases/first-contact, copied to tests/cases/), template preflight, escalation."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from dunning.cli import _load_commands, app
from dunning.config import reload_settings
from dunning.db.models import Invoice, Reminder
from dunning.render import DEFAULT_TEMPLATES_DIR

pytestmark = pytest.mark.prefect

CASE = Path(__file__).resolve().parent / "cases" / "first_contact"
RUNS = ("2026-11-03", "2026-11-04", "2026-11-10", "2026-11-17", "2026-11-24")


def _import_case(case: Path) -> None:
    _load_commands()
    for kind in ("customers", "invoices", "payments"):
        if (case / f"{kind}.csv").exists():
            result = CliRunner().invoke(app, ["import", kind, str(case / f"{kind}.csv")])
            assert result.exit_code == 0, result.output


def _at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T16:00:00+00:00")


def _ledger(engine: Any) -> list[tuple[str, str, str, str, str | None]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(
                    Invoice.invoice_number,
                    Reminder.stage,
                    Reminder.channel,
                    Reminder.status,
                    Reminder.body,
                )
                .join(Invoice, Invoice.id == Reminder.invoice_id)
                .order_by(Reminder.id)
            )
        ]


def test_first_contact_case_first_overdue_wording_then_repeats_from_the_last_sent(
    prefect_server, engine
):
    from dunning.flows.payment_reminders import payment_reminders

    _import_case(CASE)
    stages: dict[str, list[tuple[str, str]]] = {"INV-CU-1": [], "INV-CU-2": []}
    seen = 0
    for day in RUNS:
        report = payment_reminders(as_of=_at(day))
        assert report.counts()["failed"] == 0
        rows = _ledger(engine)
        for number, stage, channel, status, _ in rows[seen:]:
            if channel == "email":
                stages[number].append((day, stage))
            assert status == "sent"
        seen = len(rows)
    # the first contact is overdue_1 with the true days overdue; each later rung waits for the
    # last one sent (min_gap_days, repeat_every_days) and the repeats go on while unpaid
    assert stages["INV-CU-2"] == [
        ("2026-11-03", "overdue_1"),
        ("2026-11-10", "overdue_2"),
        ("2026-11-17", "final_notice"),
        ("2026-11-24", "final_notice_r2"),
    ]
    assert stages["INV-CU-1"] == stages["INV-CU-2"]
    first = {(n, ch): body for n, st, ch, _, body in _ledger(engine) if st == "overdue_1"}
    assert (
        "INV-CU-2, due on October 1, 2026, is now 33 days overdue" in first[("INV-CU-2", "email")]
    )
    for body in first.values():
        assert body and "final notice" not in body.lower() and "2nd reminder" not in body


def _broken_templates(tmp_path: Path) -> Path:
    copy = tmp_path / "templates"
    shutil.copytree(DEFAULT_TEMPLATES_DIR, copy)
    path = copy / "overdue_1" / "email.en.txt"
    path.write_text(path.read_text().replace("{{ invoice_number }}", "{{ invoice_numbr }}", 1))
    return copy


def test_a_template_error_fails_the_run_before_anything_is_sent_or_marked(
    prefect_server, engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from dunning.flows.payment_reminders import payment_reminders

    _import_case(CASE)
    monkeypatch.setenv("DUNNING_TEMPLATES_DIR", str(_broken_templates(tmp_path)))
    reload_settings()
    state = payment_reminders(as_of=_at(RUNS[0]), return_state=True)
    assert state.is_failed()
    message = str(state.result(raise_on_failure=False))
    assert "template overdue_1/email.en.txt line 1: field 'invoice_numbr' is undefined" in message
    assert "stage overdue_1 on email for locale en_US" in message
    assert _ledger(engine) == []  # nothing marked
    outbox = Path(tmp_path / "home" / "outbox")
    assert not outbox.exists() or not [p for p in outbox.rglob("*") if p.is_file()]

    monkeypatch.delenv("DUNNING_TEMPLATES_DIR")  # the template is fixed
    reload_settings()
    report = payment_reminders(as_of=_at(RUNS[0]))
    assert report.counts()["sent"] == 4  # two invoices, email and SMS, overdue_1


def test_a_reminder_that_never_reached_the_provider_is_sent_after_all(prefect_server, engine):
    from dunning.flows.payment_reminders import payment_reminders

    _import_case(CASE)
    with engine.begin() as conn:
        inv = conn.scalar(select(Invoice.id).where(Invoice.invoice_number == "INV-CU-2"))
        conn.execute(
            insert(Reminder).values(
                invoice_id=inv,
                customer_id="C-92",
                stage="overdue_1",
                channel="email",
                status="failed_permanent",
                error_code="template_error",
                attempts=1,
                reason="template overdue_1/email.en.txt: field 'x' is undefined",
                planned_for=_at("2026-11-02"),
                planned_at=_at("2026-11-02"),
            )
        )
    report = payment_reminders(as_of=_at(RUNS[0]))
    assert report.counts()["sent"] == 4
    [row] = [r for r in _ledger(engine) if r[:3] == ("INV-CU-2", "overdue_1", "email")]
    assert row[3] == "sent"


def _events(resource_id: str, since_instant: dt.datetime) -> list[dict[str, Any]]:
    """Events about ``resource_id`` since ``since_instant`` (the session's Prefect server is
    shared by both database backends, so an earlier parametrisation's events are there too)."""
    from prefect.settings import PREFECT_API_URL

    since = since_instant.isoformat()
    response = httpx.post(
        f"{PREFECT_API_URL.value()}/events/filter",
        json={
            "filter": {"occurred": {"since": since}, "resource": {"id": [resource_id]}},
            "limit": 50,
        },
        timeout=30,
    )
    response.raise_for_status()
    return list(response.json()["events"])


def test_an_exhausted_ladder_escalates_once_instead_of_going_silent(prefect_server, engine):
    from dunning.flows.payment_reminders import payment_reminders

    started = dt.datetime.now(dt.UTC)
    _import_case(CASE)
    with engine.begin() as conn:
        inv = conn.scalar(select(Invoice.id).where(Invoice.invoice_number == "INV-CU-2"))
        conn.execute(
            insert(Reminder),
            [
                dict(
                    invoice_id=inv,
                    customer_id="C-92",
                    stage=stage,
                    channel="email",
                    status="delivered",
                    attempts=1,
                    planned_for=_at(day),
                    sent_at=_at(day),
                )
                for stage, day in (
                    ("overdue_1", "2026-11-03"),
                    ("overdue_2", "2026-11-10"),
                    ("final_notice", "2026-11-17"),
                    ("final_notice_r2", "2026-11-21"),
                    ("final_notice_r3", "2026-11-25"),
                    ("final_notice_r4", "2026-11-30"),
                )
            ],
        )
    first = payment_reminders(as_of=_at("2026-12-07"), invoice_numbers=["INV-CU-2"])
    frame = first.to_frame()
    assert set(frame["reason"]) == {"escalated"}
    with engine.connect() as conn:
        assert conn.scalar(select(Invoice.escalated_at).where(Invoice.id == inv)) is not None
    again = payment_reminders(as_of=_at("2026-12-08"), invoice_numbers=["INV-CU-2"])
    assert set(again.to_frame()["reason"]) == {"escalated"}
    events: list[dict[str, Any]] = []
    for _ in range(60):  # events reach the server asynchronously
        events = _events("dunning.invoice.INV-CU-2", started)
        if events:
            break
        time.sleep(0.5)
    time.sleep(1)
    events = _events("dunning.invoice.INV-CU-2", started)
    assert [e["event"] for e in events] == ["dunning.invoice.escalated"]  # once, not per run
    assert events[0]["payload"]["last_stage"] == "final_notice_r4"
    assert events[0]["payload"]["days_overdue"] == 67

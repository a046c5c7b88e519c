"""The payment-reminders flow end to end on a real Prefect test server."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dunning.db.models import Reminder, ReminderRun
from tests.factories import add_customer, add_invoice, add_payment

pytestmark = pytest.mark.prefect

# Tuesday 24 Nov 2026, 15:00 UTC = 10:00 in New York: inside the default send window.
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


def _portfolio(engine) -> None:
    add_customer(engine, "C1")
    add_customer(
        engine,
        "C2",
        email="bo@example.org",
        phone=None,
        sms_consent=False,
        locale="de_DE",
        country="DE",
        timezone="Europe/Berlin",
    )
    add_invoice(engine, "INV-DUE", "C1", due_on=dt.date(2026, 11, 24))
    add_invoice(engine, "INV-LATE", "C1", due_on=dt.date(2026, 11, 10))
    paid = add_invoice(engine, "INV-PAID", "C1", due_on=dt.date(2026, 11, 10))
    add_payment(engine, paid, "100.00", "pay-paid")
    add_invoice(
        engine,
        "INV-DE",
        "C2",
        due_on=dt.date(2026, 11, 20),
        currency="EUR",
        amount=Decimal("250.00"),
    )
    add_invoice(engine, "INV-DISPUTED", "C2", due_on=dt.date(2026, 11, 1), status="disputed")


def test_a_run_sends_each_due_reminder_once_and_a_rerun_sends_nothing(
    prefect_server, engine, tmp_path: Path
):
    from dunning.flows.payment_reminders import payment_reminders

    _portfolio(engine)
    dry = payment_reminders(as_of=AS_OF, dry_run=True)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count(Reminder.id))) == 0
    planned = dry.counts()["planned"]
    assert planned >= 3

    first = payment_reminders(as_of=AS_OF)
    counts = first.counts()
    assert counts["sent"] == planned and counts["failed"] == 0
    frame = first.to_frame()
    sent = frame[frame["outcome"] == "sent"]
    assert "INV-PAID" not in set(sent["invoice_number"])
    assert "INV-DISPUTED" not in set(sent["invoice_number"])
    assert {"INV-DUE", "INV-LATE", "INV-DE"} <= set(sent["invoice_number"])
    # the German customer has no phone and no consent: email only
    assert set(sent[sent["invoice_number"] == "INV-DE"]["channel"]) == {"email"}
    with engine.connect() as conn:
        statuses = conn.execute(
            select(Reminder.status, func.count()).group_by(Reminder.status)
        ).all()
        assert dict(statuses) == {"sent": planned}
        assert conn.scalar(select(func.count(ReminderRun.id))) == 1
    outbox = Path(tmp_path / "home" / "outbox")
    assert len([p for p in outbox.rglob("*") if p.is_file()]) == planned

    second = payment_reminders(as_of=AS_OF)
    assert second.counts()["sent"] == 0
    with engine.connect() as conn:
        assert conn.scalar(select(func.count(Reminder.id))) == planned
    assert len([p for p in outbox.rglob("*") if p.is_file()]) == planned


def test_the_run_publishes_its_summary_and_failures_artifacts(prefect_server, engine):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        TaskRunFilter,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    from dunning.flows.payment_reminders import payment_reminders

    _portfolio(engine)
    report = payment_reminders(as_of=AS_OF)
    with get_client(sync_client=True) as client:
        # Every filter spelled out: this client/server pair rejects the defaults (None).
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["reminder-run-summary", "reminder-run-failures"])
            ),
            flow_run_filter=FlowRunFilter(),
            task_run_filter=TaskRunFilter(),
            sort=ArtifactSort.CREATED_DESC,
            limit=50,
            offset=0,
        )
        mine = [a for a in arts if str(a.flow_run_id) == report.flow_run_id]
    kinds = {a.key: a for a in mine}
    assert set(kinds) == {"reminder-run-summary", "reminder-run-failures"}
    summary = str(kinds["reminder-run-summary"].data)
    assert f"| {report.counts()['sent']} |" in summary
    assert "@" not in summary and "+1415" not in summary


def test_the_summary_shows_the_delivery_funnel(prefect_server, engine):
    from dunning.flows.payment_reminders import payment_reminders

    _portfolio(engine)
    report = payment_reminders(as_of=AS_OF)
    sent = report.counts()["sent"]
    assert f"accepted by the provider {sent} (failed 0" in report.to_markdown()


def test_max_messages_defers_the_rest_to_the_next_run(prefect_server, engine):
    from dunning.flows.payment_reminders import payment_reminders

    _portfolio(engine)
    report = payment_reminders(as_of=AS_OF, max_messages=1)
    frame = report.to_frame()
    assert report.counts()["sent"] == 1
    assert (frame["reason"] == "max_messages_per_run").sum() >= 2


def _delivery_tasks(flow_run_id: str) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterName,
    )

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=" batch ")),
            limit=200,
            offset=0,
        )
    return len(runs)


def test_small_runs_fan_out_one_task_per_invoice_and_batch_size_groups(prefect_server, engine):
    from dunning.flows.payment_reminders import fan_out, payment_reminders

    _portfolio(engine)
    report = payment_reminders(as_of=AS_OF, dry_run=True)
    invoices = report.to_frame().query("outcome == 'planned'")["invoice_number"].nunique()
    real = payment_reminders(as_of=AS_OF)
    assert _delivery_tasks(str(real.flow_run_id)) == invoices
    # above max_tasks, or with a batch size, reminders are cut into batches instead
    groups = [[1, 2], [3], [4, 5], [6]]
    assert fan_out(groups, None, 4) == groups
    assert fan_out(groups, None, 2) == [[1, 2, 3], [4, 5, 6]]
    assert fan_out(groups, 4, 10) == [[1, 2, 3, 4], [5, 6]]


def test_large_runs_without_a_batch_size_fan_out_in_batches_of_500_but_fill_the_concurrency():
    """Issue 19: a 20,000-message run made 200 delivery tasks (max_tasks) of 100, about 50
    Prefect API calls per 1,000 messages; batches of DEFAULT_BATCH make it 40 tasks, while a
    run just above max_tasks still has ``concurrency`` tasks to run side by side."""
    from dunning.flows.payment_reminders import DEFAULT_BATCH, fan_out, pack_customers

    big = [[i] for i in range(20_000)]
    batches = fan_out(big, None, 200, 4)
    assert len(batches) == 20_000 // DEFAULT_BATCH == 40
    assert sorted(i for b in batches for i in b) == list(range(20_000))
    assert len(fan_out(big, None, 200)) == 200  # without the concurrency: the old bound
    assert len(fan_out(big, 100, 200, 4)) == 200  # an explicit batch size is kept
    assert len(fan_out(big, None, 20, 4)) == 20  # max_tasks still caps the task count
    # just above max_tasks: one batch per concurrent task, not one batch of 500
    small = [[i] for i in range(201)]
    assert [len(b) for b in fan_out(small, None, 200, 4)] == [51, 51, 51, 48]
    assert fan_out(small[:200], None, 200, 4) == small[:200]  # one task per invoice still
    customers = [[i, i + 1] for i in range(0, 40_000, 2)]
    packed = pack_customers(customers, None, 200, 8)
    assert len(packed) == 40 and all(len(b) == DEFAULT_BATCH for b in packed)


def test_rerunning_a_seeded_portfolio_for_the_same_as_of_sends_nothing_new(prefect_server, engine):
    from dunning.devtools.seed import seed_portfolio
    from dunning.flows.payment_reminders import payment_reminders

    # the seed has failed card payments, promises, repeats: every path the planner takes
    seed_portfolio(engine, 200, 1000, 7, AS_OF.date())  # the demo portfolio
    first = payment_reminders(as_of=AS_OF)
    assert first.counts()["sent"] > 10
    with engine.connect() as conn:
        rows = conn.scalar(select(func.count(Reminder.id)))
    again = payment_reminders(as_of=AS_OF)
    assert again.counts()["sent"] == 0
    with engine.connect() as conn:
        assert conn.scalar(select(func.count(Reminder.id))) == rows
    # two hours later more send windows are open (further west), but no invoice that was
    # reminded at 15:00 gets a second message the same day
    later = payment_reminders(as_of=AS_OF + dt.timedelta(hours=2)).to_frame()
    first_sent = set(first.to_frame().query("outcome == 'sent'")["invoice_number"])
    later_sent = set(later.query("outcome == 'sent'")["invoice_number"])
    assert later_sent and not (later_sent & first_sent)

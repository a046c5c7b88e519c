"""A sharded reminder run in this process (shards as subflows) on the Prefect test server:
it sends exactly what one unsharded run sends, and a failed shard fails the coordinator."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from dunning.cli import _load_commands, app
from dunning.config import reload_settings
from dunning.db.models import Invoice, Reminder, ReminderRun
from dunning.devtools.fakes import run_fakes
from dunning.devtools.seed import seed_portfolio
from dunning.sharding import shard_of
from tests.factories import add_customer, add_invoice

pytestmark = pytest.mark.prefect

# Tuesday 24 Nov 2026, 15:00 UTC: inside the send window of the seed's American and European
# customers, so most due reminders go out.
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
COMPARED = ("counts", "by_channel", "by_stage", "by_segment", "skip_reasons")


def _ledger(engine: Engine) -> set[tuple[str, str, str, str]]:
    """(invoice number, stage, channel, status) of every ledger row."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Invoice.invoice_number, Reminder.stage, Reminder.channel, Reminder.status).join(
                Invoice, Invoice.id == Reminder.invoice_id
            )
        ).all()
    return {tuple(r) for r in rows}  # type: ignore[misc]


def _runs(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(
                    ReminderRun.flow_run_id,
                    ReminderRun.as_of,
                    ReminderRun.dry_run,
                    ReminderRun.outcomes,
                )
            )
        )


def test_three_shards_send_exactly_what_one_run_sends(prefect_server, engine: Engine):
    from dunning.flows.payment_reminders import payment_reminders

    seed_portfolio(engine, 150, 600, 7, AS_OF.date())
    single = payment_reminders(as_of=AS_OF)
    sent_by_one = _ledger(engine)
    assert single.counts()["sent"] > 15 and {s for *_, s in sent_by_one} == {"sent"}

    seed_portfolio(engine, 150, 600, 7, AS_OF.date(), reset=True)  # the identical portfolio
    assert _ledger(engine) == set()
    sharded = payment_reminders(as_of=AS_OF, shards=3)

    assert _ledger(engine) == sent_by_one
    one, three = single.to_json(), sharded.to_json()
    assert {k: three[k] for k in COMPARED} == {k: one[k] for k in COMPARED}
    # Each shard is its own subflow run and stored its outcomes for the coordinator.
    shards = three["shards"]
    assert [s["shard"] for s in shards] == [0, 1, 2]
    assert {s["state"] for s in shards} == {"COMPLETED"}
    assert sum(s["counts"]["sent"] for s in shards) == one["counts"]["sent"]
    assert all(s["counts"]["sent"] > 0 for s in shards)  # the seed spreads over all three
    runs = _runs(engine)
    assert sorted(r.flow_run_id for r in runs) == sorted(s["flow_run_id"] for s in shards)
    assert three["flow_run_id"] not in {r.flow_run_id for r in runs}
    assert all(r.outcomes and r.as_of == AS_OF for r in runs)
    # Each shard planned only its own customers.
    with engine.connect() as conn:
        planned = conn.execute(select(Reminder.customer_id, Reminder.flow_run_id)).all()
    shard_of_run = {s["flow_run_id"]: s["shard"] for s in shards}
    assert all(shard_of(c, 3) == shard_of_run[run] for c, run in planned)


def test_shards_act_as_of_the_coordinators_instant_and_split_max_messages(
    prefect_server, engine: Engine
):
    from dunning.flows.payment_reminders import payment_reminders

    seed_portfolio(engine, 150, 600, 7, AS_OF.date())
    dry = payment_reminders(dry_run=True, shards=2)  # as_of empty: now
    runs = _runs(engine)
    assert len(runs) == 2 and all(r.dry_run for r in runs)
    assert runs[0].as_of == runs[1].as_of == dry.as_of
    assert _ledger(engine) == set()

    capped = payment_reminders(as_of=AS_OF, shards=2, max_messages=5)
    assert capped.counts()["sent"] == 5  # 3 + 2, not 5 per shard
    assert sorted(s["counts"]["sent"] for s in capped.to_json()["shards"]) == [2, 3]
    reasons = dict(capped.skip_reasons())
    assert reasons.get("max_messages_per_run", 0) > 0  # the rest waits for the next run


def _customer_in_shard(shard: int, shards: int, prefix: str) -> str:
    """The first id ``prefix``-N that falls in ``shard``."""
    return next(f"{prefix}-{n}" for n in range(1000) if shard_of(f"{prefix}-{n}", shards) == shard)


def test_a_failed_shard_fails_the_coordinator_after_the_other_shards_ran(
    prefect_server, engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    from dunning.flows.payment_reminders import payment_reminders

    # Shard 0 has only SMS reminders and Twilio refuses our credentials; shard 1 sends email.
    sms_only = _customer_in_shard(0, 2, "SMS")
    email_only = _customer_in_shard(1, 2, "MAIL")
    add_customer(engine, sms_only, email=None, phone="+14155550111")
    add_customer(engine, email_only, phone=None, sms_consent=False, email="m@example.com")
    add_invoice(engine, "INV-SMS", sms_only, due_on=dt.date(2026, 11, 10))
    add_invoice(engine, "INV-MAIL", email_only, due_on=dt.date(2026, 11, 10))

    with run_fakes(seed=3) as fakes:
        for name, value in {**fakes.env(), "DUNNING_TWILIO_AUTH_TOKEN": "wrong"}.items():
            monkeypatch.setenv(name, value)
            reload_settings()
        state = payment_reminders(as_of=AS_OF, shards=2, return_state=True)
        received = fakes.received()

    assert state.is_failed()
    # The failed shard stored its outcomes too (it stopped after publishing its report).
    (failed,) = [r for r in _runs(engine) if r.outcomes and r.outcomes["stopped"]]
    run = f"flow run {_name_of(failed.flow_run_id)} ({failed.flow_run_id})"
    assert f"shard 0 of 2 ({run}) ended FAILED" in (state.message or "")
    assert "Twilio refused the credentials" in (state.message or "")
    # Shard 1 still ran after shard 0 failed: its email went out, once.
    assert [m.provider for m in received] == ["sendgrid"]
    statuses = {(n, c): s for n, _, c, s in _ledger(engine)}
    assert statuses == {("INV-MAIL", "email"): "sent", ("INV-SMS", "sms"): "planned"}


def _name_of(flow_run_id: str) -> str:
    """The name the Prefect server has for flow run ``flow_run_id``."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).name  # type: ignore[arg-type]


def test_dunning_run_shards_and_shard_from_the_command_line(prefect_server, engine: Engine):
    _load_commands()
    seed_portfolio(engine, 150, 600, 7, AS_OF.date())
    runner = CliRunner()
    as_of = ["--as-of", AS_OF.isoformat()]
    one = runner.invoke(
        app, ["run", *as_of, "--dry-run", "--shards", "2", "--shard", "1", "--json"]
    )
    assert one.exit_code == 0, one.stderr
    only_1 = json.loads(one.stdout)
    assert "shards" not in only_1 and only_1["counts"]["planned"] > 0

    both = runner.invoke(app, ["run", *as_of, "--dry-run", "--shards", "2", "--json"])
    assert both.exit_code == 0, both.stderr
    summary = json.loads(both.stdout)
    assert [s["shard"] for s in summary["shards"]] == [0, 1]
    assert summary["shards"][1]["counts"] == only_1["counts"]
    assert summary["counts"]["planned"] == sum(s["counts"]["planned"] for s in summary["shards"])

    shown = runner.invoke(app, ["run", *as_of, "--shards", "2"])
    assert shown.exit_code == 0, shown.stderr
    assert "shard 0: completed, sent" in shown.stdout and "shard 1: completed" in shown.stdout

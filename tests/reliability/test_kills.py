"""SIGKILL the reminder run at every point of delivery; re-run and reconcile: zero duplicates at
the provider, and every reminder ends sent, failed, planned or unknown with a reason."""

from __future__ import annotations

import datetime as dt
import json
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from dunning import ledger
from dunning.channels import get_channel
from dunning.config import reload_settings
from dunning.devtools.fakes import RunningFakes
from dunning.ledger import reconcile
from dunning.render import compose
from tests.factories import add_customer, add_invoice
from tests.reliability.support import (
    LEASE_S,
    dunning_run,
    duplicates,
    ledger_rows,
    lost,
    portfolio,
    run_env,
    sent_matches_provider,
    start_run,
    statuses,
    summary,
    well_formed,
)

#: One kill per point of delivery, each in a run over its own group of invoices (a run sends
#: everything still planned, so a later run would otherwise find nothing left to die in).
#: With 8 reminders in batches of 3, the 2nd batch dies while the others are in flight.
KILLS = ("before_claim:2", "after_claim:2", "after_send:2", "after_record:1", "after_send:1")
#: Extra options per killed run: the last one sends SMS only, so it dies after Twilio took
#: messages that nothing recorded (the case reconciliation asks Twilio about).
OPTIONS: tuple[tuple[str, ...], ...] = ((), (), (), (), ("--channel", "sms"))
GROUP = 4  # customers (2 reminders each) per killed run


@pytest.mark.slow
@pytest.mark.prefect
def test_runs_killed_at_every_point_send_nothing_twice_and_lose_nothing(
    prefect_server: None, engine, db_url: str, fakes: RunningFakes, tmp_path: Path
) -> None:
    planned = portfolio(engine, GROUP * len(KILLS))
    env = run_env(db_url, fakes.env(), tmp_path / "home")
    started = time.monotonic()
    # The killed runs go side by side (disjoint invoices): faster, and a kill hits a
    # database that other runs are writing to.
    procs = []
    for n, (spec, options) in enumerate(zip(KILLS, OPTIONS, strict=True)):
        group = range(n * GROUP, (n + 1) * GROUP)
        invoices = [a for i in group for a in ("--invoice", f"INV-R{i:03d}")]
        procs.append(
            start_run({**env, "DUNNING_CRASH_AT": spec}, "--batch-size", "3", *options, *invoices)
        )
    for spec, proc in zip(KILLS, procs, strict=True):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, (spec, proc.returncode, err[-2000:])
    assert well_formed(ledger_rows(engine)) == []
    killed = statuses(ledger_rows(engine))
    # The kills left claims behind (runs that started later may have settled some already).
    assert killed.get("claimed", 0) + killed.get("unknown", 0) > 0, killed

    time.sleep(LEASE_S + 0.5)  # every claim of the killed runs expires
    # The 1st clean run settles the stale claims (sent, unknown, or released to planned) and
    # sends what was planned; it plans before it reconciles, so what it released goes out
    # with the 2nd.
    clean = dunning_run(env, "--batch-size", "3")
    assert clean.returncode == 0, clean.stderr[-2000:]
    assert "Traceback" not in clean.stderr
    assert lost(ledger_rows(engine)) == []
    reconciled = json.loads(clean.stdout.strip().splitlines()[-1])["reconciled"]
    second = dunning_run(env, "--batch-size", "3")
    assert second.returncode == 0, second.stderr[-2000:]

    rows = ledger_rows(engine)
    assert len(rows) == planned
    assert duplicates(fakes) == {}
    assert lost(rows) == []
    assert well_formed(rows) == []
    assert sent_matches_provider(rows, fakes) == []
    final = statuses(rows)
    # Only a message that may have left without a record is left for the operator, only
    # e-mail (Twilio is asked), and only from a killed run (the clean run settled its own).
    assert final.get("sent", 0) + final.get("unknown", 0) == planned, final
    unknown = [r for r in rows if r.status == "unknown"]
    assert {r.channel for r in unknown} <= {"email"}
    clean_claimer = "run-" + json.loads(clean.stdout.strip().splitlines()[-1])["flow_run_id"]
    assert not [r for r in unknown if r.claimed_by == clean_claimer]
    # SMS that Twilio took before the kill were found there, not sent again.
    found = [r for r in rows if r.reason == "reconciled with the provider after a crash"]
    assert found and {r.channel for r in found} == {"sms"}
    summary(
        "kills",
        backend=engine.dialect.name,
        kills=len(KILLS),
        after_kills=killed,
        found_at_twilio=len(found),
        reconciled=reconciled,
        final=final,
        accepted=len(fakes.received()),
        duplicates=len(duplicates(fakes)),
        seconds=round(time.monotonic() - started, 1),
    )


def test_reconciling_asks_twilio_which_stale_claim_went_out(
    engine, fakes: RunningFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in fakes.env().items():
        monkeypatch.setenv(name, value)
        reload_settings()
    add_customer(engine, "T1", phone="+14155550999")
    ids = {n: add_invoice(engine, n, "T1", due_on=dt.date(2026, 11, 10)) for n in ("A-1", "A-10")}
    sends = pd.DataFrame(
        [
            {"invoice_id": i, "customer_id": "T1", "stage": "overdue_1", "channel": "sms"}
            for i in ids.values()
        ]
    )
    planned = ledger.record_plan(engine, sends)
    claim = ledger.claim(engine, planned, claimer="dead", lease_seconds=60)
    by_invoice = {d.invoice_number: d for d in claim.claimed}
    # The process "dies" after Twilio accepted A-10's message and before anything is recorded;
    # A-1's message never left (its number is a prefix of A-10's: no false match).
    channel = get_channel("sms")
    [accepted] = channel.send_batch([compose(by_invoice["A-10"])])
    assert accepted.ok

    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61)
    counts = reconcile.reconcile_stale(engine, {"sms": channel.find_sent}, now=later)  # type: ignore[attr-defined]

    assert counts == {"found_sent": 1, "released": 1, "unknown": 0}
    rows = {r.id: r for r in ledger_rows(engine)}
    a10, a1 = rows[by_invoice["A-10"].reminder_id], rows[by_invoice["A-1"].reminder_id]
    assert (a10.status, a10.provider_message_id) == ("sent", accepted.provider_message_id)
    assert a1.status == "planned"  # safe to send: Twilio has no message for it
    assert len(fakes.received()) == 1


def test_a_customer_message_killed_after_send_is_found_whole_and_never_resent(
    engine, fakes: RunningFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dunning.delivery import customer_messages
    from dunning.render import compose_group

    # One message per customer: three invoices' SMS rows are claimed as one message, Twilio
    # takes it, and the process dies before recording. Reconciliation asks Twilio once (about
    # the message's lead) and settles all three rows with the one sid; none is sent again.
    for name, value in fakes.env().items():
        monkeypatch.setenv(name, value)
    add_customer(engine, "T2", phone="+14155550998")
    ids = [
        add_invoice(engine, n, "T2", due_on=dt.date(2026, 11, d))
        for n, d in (("G-1", 3), ("G-2", 10), ("G-3", 12))
    ]
    sends = pd.DataFrame(
        [
            {"invoice_id": i, "customer_id": "T2", "stage": "overdue_1", "channel": "sms"}
            for i in ids
        ]
    )
    planned = ledger.record_plan(engine, sends)
    claim = ledger.claim(engine, planned, claimer="dead", lease_seconds=60, group=customer_messages)
    [message] = claim.groups
    assert len(message) == 3 and message[0].invoice_number == "G-1"  # the most overdue leads
    channel = get_channel("sms")
    [accepted] = channel.send_batch([compose_group(message)])
    assert accepted.ok and accepted.reminder_id == message[0].reminder_id

    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61)
    counts = reconcile.reconcile_stale(engine, {"sms": channel.find_sent}, now=later)  # type: ignore[attr-defined]

    assert counts == {"found_sent": 3, "released": 0, "unknown": 0}
    rows = ledger_rows(engine)
    assert {(r.status, r.provider_message_id) for r in rows} == {
        ("sent", accepted.provider_message_id)
    }
    assert len(fakes.received()) == 1


@pytest.mark.slow
@pytest.mark.prefect
def test_customer_messages_killed_at_claim_and_send_are_recovered_once(
    prefect_server: None, engine, db_url: str, fakes: RunningFakes, tmp_path: Path
) -> None:
    from dunning.policy.loader import DEFAULT_POLICY_PATH

    # One message per customer: each customer has three overdue invoices (email and SMS).
    # A run killed right after a grouped claim, and one killed after the provider took a
    # message, leave claimed groups; the clean runs settle each group whole and send the rest
    # once, so the provider never sees a message twice and no row is lost.
    policy = tmp_path / "policy.toml"
    policy.write_text(
        'consolidate = "customer"\n' + DEFAULT_POLICY_PATH.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    customers = 4
    for i in range(customers):
        cid = f"K{i:03d}"
        add_customer(engine, cid, email=f"k{i:03d}@example.com", phone=f"+1415556{i:04d}")
        for j, day in enumerate((3, 10, 12)):
            add_invoice(engine, f"INV-K{i:03d}-{j}", cid, due_on=dt.date(2026, 11, day))
    planned = customers * 3 * 2
    env = run_env(db_url, fakes.env(), tmp_path / "home", DUNNING_POLICY_PATH=str(policy))
    procs = []
    for n, spec in enumerate(("after_claim:1", "after_send:1")):
        invoices = [
            a
            for i in (2 * n, 2 * n + 1)
            for j in range(3)
            for a in ("--invoice", f"INV-K{i:03d}-{j}")
        ]
        procs.append(start_run({**env, "DUNNING_CRASH_AT": spec}, *invoices))
    for spec, proc in zip(("after_claim:1", "after_send:1"), procs, strict=True):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, (spec, proc.returncode, err[-2000:])
    killed = ledger_rows(engine)
    assert well_formed(killed) == []
    groups = {r.message_group for r in killed if r.status == "claimed"}
    assert groups and None not in groups  # the killed claims were grouped claims

    time.sleep(LEASE_S + 0.5)
    for _ in range(2):  # the first settles the stale groups, the second sends what it released
        clean = dunning_run(env)
        assert clean.returncode == 0, clean.stderr[-2000:]
    rows = ledger_rows(engine)
    assert len(rows) == planned
    assert duplicates(fakes) == {}
    assert lost(rows) == [] and well_formed(rows) == []
    assert sent_matches_provider(rows, fakes) == []
    final = statuses(rows)
    assert final.get("sent", 0) + final.get("unknown", 0) == planned, final
    # never more than one email and one SMS per customer reached the provider
    assert len(fakes.received()) <= 2 * customers
    for r in rows:
        if r.status == "sent":
            same = [
                o for o in rows if o.message_group == r.message_group and o.channel == r.channel
            ]
            assert {o.provider_message_id for o in same} == {r.provider_message_id}
    summary(
        "kills-per-customer",
        backend=engine.dialect.name,
        final=final,
        accepted=len(fakes.received()),
        duplicates=len(duplicates(fakes)),
    )

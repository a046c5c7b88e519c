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

"""The ledger protocol: a reminder goes out at most once, whatever runs overlap or crash."""

from __future__ import annotations

import datetime as dt
import threading

import pandas as pd
from sqlalchemy import select

from dunning import ledger
from dunning.core.messages import OutboundMessage, ReminderData, SendResult, StaleClaim
from dunning.db import session_scope
from dunning.db.models import Customer, Reminder
from dunning.delivery import deliver_batch
from dunning.errors import ProviderAuthError
from dunning.ledger import reconcile
from tests.factories import add_customer, add_invoice, add_payment


def _sends(invoice_id: int, *channels: str, stage: str = "overdue_1") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "invoice_id": invoice_id,
                "customer_id": "C1",
                "stage": stage,
                "channel": ch,
                "segment": "reliable",
                "tone": "neutral",
                "not_before": pd.Timestamp("2026-11-24T15:00:00Z"),
            }
            for ch in channels
        ]
    )


class Provider:
    """A provider stand-in that accepts, or answers with a scripted result per call."""

    name = "email"
    provider = "stand-in"

    def __init__(self, script: list[dict] | None = None, raise_auth: bool = False) -> None:
        self.received: list[OutboundMessage] = []
        self.script = list(script or [])
        self.raise_auth = raise_auth
        self.lock = threading.Lock()

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        if self.raise_auth:
            raise ProviderAuthError("stand-in refused the API key")
        out = []
        for m in messages:
            with self.lock:
                step = self.script.pop(0) if self.script else {}
                if not step:
                    self.received.append(m)
            out.append(
                SendResult(
                    reminder_id=m.reminder_id,
                    ok=not step,
                    provider=self.provider,
                    provider_message_id=None if step else f"pm-{m.reminder_id}",
                    **step,
                )
            )
        return out


def compose(data: ReminderData) -> OutboundMessage:
    to = data.email if data.channel == "email" else data.phone
    assert to
    return OutboundMessage(
        reminder_id=data.reminder_id,
        channel=data.channel,
        to=to,
        text=f"{data.invoice_number}: {data.balance_due} {data.currency} due",
        subject="Reminder",
        template_key=f"{data.stage}/{data.channel}.en",
    )


def _status(engine) -> dict[tuple[str, str], str]:
    with engine.connect() as conn:
        return {
            (r.stage, r.channel): r.status
            for r in conn.execute(select(Reminder.stage, Reminder.channel, Reminder.status))
        }


def test_planning_twice_adds_each_reminder_once(engine):
    add_customer(engine)
    inv = add_invoice(engine)
    first = ledger.record_plan(engine, _sends(inv, "email", "sms"), run_id="a")
    second = ledger.record_plan(engine, _sends(inv, "email", "sms"), run_id="b")
    assert len(first) == 2 and first == second
    with engine.connect() as conn:
        assert len(conn.execute(select(Reminder.id)).all()) == 2


def test_a_plan_over_rows_in_every_state_returns_what_it_planned(engine):
    """One record_plan over new rows and rows left in every state by earlier runs (both
    backends: SQLite's executemany, PostgreSQL's COPY): new rows are inserted and returned
    with their fields, planned ones are returned as they are, one that never reached the
    provider is planned again, and a sent one, an operator's skip and a holdout stay."""
    add_customer(engine)
    invoices = [add_invoice(engine, f"INV-{k}") for k in range(7)]
    earlier = ledger.record_plan(
        engine, pd.concat([_sends(i, "email") for i in invoices[1:]]), run_id="old"
    )
    left = dict(zip(invoices[1:], earlier, strict=True))
    states = {  # invoice -> (status, reason) the earlier runs left its row in
        invoices[2]: ("sent", None),
        invoices[3]: ("failed_permanent", "bounced"),
        invoices[4]: ("skipped", "operator: settled by phone"),
        invoices[5]: ("skipped", "holdout"),
        invoices[6]: ("skipped", "paid"),  # skipped at claim time: planned again
    }
    with session_scope(engine) as s:
        for inv, (status, reason) in states.items():
            row = s.get_one(Reminder, left[inv])
            row.status, row.reason = status, reason
    sends = pd.concat([_sends(i, "email") for i in invoices] + [_sends(invoices[0], "sms")])
    sends.loc[sends["channel"] == "sms", "not_before"] = pd.NaT
    ids = ledger.record_plan(
        engine, sends, run_id="new", as_of=dt.datetime(2026, 11, 24, 15, tzinfo=dt.UTC)
    )
    with engine.connect() as conn:
        rows = {(r.invoice_id, r.channel): r for r in conn.execute(select(Reminder)).all()}
    new_email, new_sms = rows[(invoices[0], "email")], rows[(invoices[0], "sms")]
    assert new_email.flow_run_id == "new" and new_email.status == "planned"
    assert new_email.not_before == dt.datetime(2026, 11, 24, 15, tzinfo=dt.UTC)
    assert new_sms.not_before is None and new_sms.segment == "reliable"
    assert new_email.planned_for == dt.datetime(2026, 11, 24, 15, tzinfo=dt.UTC)
    expected = {
        new_email.id,
        new_sms.id,
        left[invoices[1]],  # planned by the earlier run, still planned
        left[invoices[3]],  # failed_permanent: planned again
        left[invoices[6]],  # skipped at claim time: planned again
    }
    assert ids == sorted(expected)
    assert rows[(invoices[3], "email")].status == "planned"
    assert rows[(invoices[3], "email")].flow_run_id == "new"
    for inv, (status, reason) in states.items():
        if inv in (invoices[3], invoices[6]):
            continue
        assert (rows[(inv, "email")].status, rows[(inv, "email")].reason) == (status, reason)
    # The same plan again returns the same rows and inserts nothing.
    assert ledger.record_plan(engine, sends, run_id="again") == ids
    with engine.connect() as conn:
        assert len(conn.execute(select(Reminder.id)).all()) == len(rows)


def test_only_one_of_two_claimers_wins_a_reminder(engine):
    add_customer(engine)
    inv = add_invoice(engine)
    ids = ledger.record_plan(engine, _sends(inv, "email"))
    a = ledger.claim(engine, ids, claimer="a", lease_seconds=60)
    b = ledger.claim(engine, ids, claimer="b", lease_seconds=60)
    assert len(a.claimed) == 1 and b.claimed == [] and b.skipped == {}


def test_claim_rechecks_balance_and_opt_out(engine):
    add_customer(engine)
    inv = add_invoice(engine)
    ids = ledger.record_plan(engine, _sends(inv, "email", "sms"))
    add_payment(engine, inv, "100.00", "pay-1")  # paid after planning
    out = ledger.claim(engine, ids, claimer="a", lease_seconds=60)
    assert out.claimed == [] and set(out.skipped.values()) == {"paid"}
    assert set(_status(engine).values()) == {"skipped"}


def test_partial_payment_leaves_the_balance_in_the_message(engine):
    add_customer(engine)
    inv = add_invoice(engine)
    add_payment(engine, inv, "40.00", "pay-1")
    ids = ledger.record_plan(engine, _sends(inv, "email"))
    out = ledger.claim(engine, ids, claimer="a", lease_seconds=60)
    assert out.claimed[0].balance_due == 60 and out.claimed[0].amount == 100


def test_sms_opt_out_after_planning_stops_the_sms_only(engine):
    add_customer(engine)
    inv = add_invoice(engine)
    ids = ledger.record_plan(engine, _sends(inv, "email", "sms"))
    with session_scope(engine) as s:
        cust = s.get(Customer, "C1")
        assert cust is not None
        cust.sms_opt_out = True
    out = ledger.claim(engine, ids, claimer="a", lease_seconds=60)
    assert [c.channel for c in out.claimed] == ["email"]
    assert list(out.skipped.values()) == ["sms_opt_out"]


def test_deliver_twice_sends_once(engine):
    add_customer(engine)
    inv = add_invoice(engine)
    ids = ledger.record_plan(engine, _sends(inv, "email", "sms"))
    provider = Provider()
    channels = {"email": provider, "sms": provider}
    r1 = deliver_batch(engine, ids, claimer="a", channels=channels, compose=compose)
    r2 = deliver_batch(engine, ids, claimer="b", channels=channels, compose=compose)
    assert (r1.sent, r2.sent, r2.claimed) == (2, 0, 0)
    assert len(provider.received) == 2
    with session_scope(engine) as s:
        row = s.scalars(select(Reminder).where(Reminder.channel == "email")).one()
        assert row.status == "sent" and row.provider_message_id == f"pm-{row.id}"
        assert row.body == "INV-1: 100.00 USD due"
        assert row.to_address == "ada@example.com" and row.attempts == 1


def test_transient_errors_go_back_to_planned_and_permanent_ones_end(engine):
    add_customer(engine)
    inv = add_invoice(engine)
    ids = ledger.record_plan(engine, _sends(inv, "email", "sms"))
    provider = Provider(
        script=[
            {
                "error_code": "http_503",
                "error": "service unavailable",
                "transient": True,
                "retry_after": 2.0,
            },
            {"error_code": "21610", "error": "recipient unsubscribed", "opt_out": True},
        ]
    )
    res = deliver_batch(
        engine, ids, claimer="a", channels={"email": provider, "sms": provider}, compose=compose
    )
    assert (res.sent, res.failed, res.released, res.retry_after) == (0, 1, 1, 2.0)
    assert _status(engine) == {
        ("overdue_1", "email"): "planned",
        ("overdue_1", "sms"): "failed_permanent",
    }
    with session_scope(engine) as s:
        cust = s.get(Customer, "C1")
        assert cust is not None and cust.sms_opt_out is True
    # the retry sends only what is still unsent
    res = deliver_batch(
        engine, ids, claimer="a", channels={"email": provider, "sms": provider}, compose=compose
    )
    assert (res.claimed, res.sent) == (1, 1)


def test_timeout_stays_claimed_and_is_reconciled_never_resent_blindly(engine):
    add_customer(engine)
    inv = add_invoice(engine)
    ids = ledger.record_plan(engine, _sends(inv, "email", "sms"))
    provider = Provider(
        script=[
            {"error_code": "timeout", "error": "read timed out", "transient": True},
            {"error_code": "timeout", "error": "read timed out", "transient": True},
        ]
    )
    res = deliver_batch(
        engine,
        ids,
        claimer="a",
        channels={"email": provider, "sms": provider},
        compose=compose,
        lease_seconds=60,
    )
    assert res.ambiguous == 2
    assert set(_status(engine).values()) == {"claimed"}
    # before the lease expires nothing is touched
    assert reconcile.reconcile_stale(engine, {}) == {"found_sent": 0, "released": 0, "unknown": 0}
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)

    def sms_finder(claim: StaleClaim) -> str | None:
        assert claim.to_address == "+14155550100"
        return "SM123"

    counts = reconcile.reconcile_stale(engine, {"sms": sms_finder}, now=later)
    assert counts == {"found_sent": 1, "released": 0, "unknown": 1}
    assert _status(engine) == {("overdue_1", "email"): "unknown", ("overdue_1", "sms"): "sent"}


def test_a_provider_that_confirms_nothing_was_sent_gets_the_claim_back(engine):
    add_customer(engine)
    inv = add_invoice(engine)
    ids = ledger.record_plan(engine, _sends(inv, "sms"))
    ledger.claim(engine, ids, claimer="crashed", lease_seconds=1)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    assert reconcile.reconcile_stale(engine, {"sms": lambda c: None}, now=later)["released"] == 1
    assert _status(engine) == {("overdue_1", "sms"): "planned"}


def test_auth_error_releases_every_claim_and_stops(engine):
    add_customer(engine)
    inv = add_invoice(engine)
    ids = ledger.record_plan(engine, _sends(inv, "email"))
    provider = Provider(raise_auth=True)
    try:
        deliver_batch(engine, ids, claimer="a", channels={"email": provider}, compose=compose)
    except ProviderAuthError:
        pass
    else:
        raise AssertionError("auth error must stop the batch")
    assert _status(engine) == {("overdue_1", "email"): "planned"}


def test_concurrent_deliveries_of_the_same_batch_send_once(engine):
    add_customer(engine)
    invs = [add_invoice(engine, number=f"INV-{i}") for i in range(20)]
    sends = pd.concat([_sends(i, "email", "sms") for i in invs])
    ids = ledger.record_plan(engine, sends)
    provider = Provider()
    channels = {"email": provider, "sms": provider}
    threads = [
        threading.Thread(
            target=deliver_batch,
            args=(engine, ids),
            kwargs={"claimer": f"w{n}", "channels": channels, "compose": compose},
        )
        for n in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent_ids = [m.reminder_id for m in provider.received]
    assert len(sent_ids) == 40 and len(set(sent_ids)) == 40

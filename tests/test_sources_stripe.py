"""The Stripe source against the fake Stripe, driven by the official ``stripe`` SDK over HTTP.

The fake speaks Stripe's wire protocol (dunning/devtools/fakes/stripe_app.py) with objects
built from Stripe's own fixtures; these tests check that protocol with the SDK, then sync,
remind, pay, void and replay events end to end.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from dunning.cli import _load_commands, app
from dunning.config import reload_settings
from dunning.db import session_scope
from dunning.db.models import Customer, Invoice, Payment, PaymentAttempt, Reminder
from dunning.devtools.fakes.stripe import StripeFakeState, fixtures_path
from dunning.devtools.fakes.stripe_app import StripeFake, StripeFakeConfig, run_stripe_fake
from dunning.sources.registry import get_source
from dunning.sources.sync import sync_source
from dunning.tracking.stripe_events import apply_stripe_event

# Tuesday 24 Nov 2026, 15:00 UTC: 10:00 in New York, 16:00 in Berlin (both in the window).
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
DUE = int(dt.datetime(2026, 11, 10, tzinfo=dt.UTC).timestamp())
runner = CliRunner()


def _seed(state: StripeFakeState) -> dict[str, str]:
    """Two customers, three open invoices, one paid, one void, one draft: ids by role."""
    ada = state.add_customer(
        name="Ada",
        email="ada@example.com",
        phone="+14155550100",
        country="US",
        preferred_locales=["en"],
    )["id"]
    jo = state.add_customer(
        name="Jo", email="jo@example.de", country="DE", preferred_locales=["de"]
    )["id"]
    ids = {
        "open_usd": state.add_invoice(ada, 12_550, "usd", due_date=DUE)["id"],
        "open_eur": state.add_invoice(
            jo, 9_990, "eur", due_date=DUE, metadata={"invoice_number": "ERP-77"}
        )["id"],
        "open_jpy": state.add_invoice(jo, 5_400, "jpy", due_date=DUE)["id"],
        "paid": state.add_invoice(ada, 1_000, "usd", due_date=DUE, status="paid")["id"],
        "void": state.add_invoice(ada, 2_000, "usd", due_date=DUE, status="void")["id"],
        "draft": state.add_invoice(ada, 3_000, "usd", status="draft")["id"],
    }
    return {"ada": ada, "jo": jo, **ids}


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeFake]:
    """A fake Stripe with a seeded account; sources.toml has `[sources.stripe]`."""
    with run_stripe_fake(StripeFakeConfig()) as running:
        for key, value in running.env().items():
            monkeypatch.setenv(key, value)
            reload_settings()
        (tmp_path / "sources.toml").write_text('[sources.stripe]\nkind = "stripe"\n')
        monkeypatch.setenv("DUNNING_SOURCES_PATH", str(tmp_path / "sources.toml"))
        reload_settings()
        yield running


def _client(fake: StripeFake, key: str | None = None) -> Any:
    return stripe.StripeClient(key or fake.config.api_key, base_addresses={"api": fake.base_url})


def test_the_fake_speaks_stripes_list_protocol_to_the_sdk(fake: StripeFake) -> None:
    ids = _seed(fake.state)
    client = _client(fake)
    first = client.v1.invoices.list(params={"limit": 2, "expand": ["data.customer"]})
    assert first.object == "list" and first.has_more and len(first.data) == 2
    assert first.data[0].id == ids["draft"]  # newest first
    assert first.data[0].customer.id == ids["ada"]  # expand[]=data.customer
    rest = client.v1.invoices.list(params={"limit": 2, "starting_after": first.data[-1].id})
    assert [i.id for i in rest.data] == [ids["paid"], ids["open_jpy"]]
    every = [i.id for i in client.v1.invoices.list(params={"limit": 4}).auto_paging_iter()]
    assert len(every) == 6 and len(set(every)) == 6
    opened = client.v1.invoices.list(params={"status": "open"})
    assert {i.id for i in opened.data} == {ids["open_usd"], ids["open_eur"], ids["open_jpy"]}
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.invoices.list(params={"colour": "red"})
    assert (bad.value.http_status, bad.value.param) == (400, "colour")
    assert "Received unknown parameter: colour" in str(bad.value.user_message)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.invoices.retrieve("in_nope")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    with pytest.raises(stripe.AuthenticationError):
        _client(fake, "sk_test_wrong_key_0000").v1.customers.list()
    paid = client.v1.invoices.pay(ids["open_usd"])
    assert (paid.status, paid.amount_remaining) == ("paid", 0)
    with pytest.raises(stripe.InvalidRequestError, match="status is open or uncollectible"):
        client.v1.invoices.pay(ids["open_usd"])
    fake.config.burst_429 = 1
    with pytest.raises(stripe.RateLimitError) as limited:
        client.v1.customers.list()
    assert limited.value.http_status == 429
    assert limited.value.json_body["error"]["code"] == "rate_limit"


def test_the_fakes_objects_have_the_shape_of_stripes_fixtures(fake: StripeFake) -> None:
    ids = _seed(fake.state)
    fixtures = json.loads(fixtures_path().read_text())["resources"]
    client = _client(fake)
    for kind, obj in (
        ("invoice", client.v1.invoices.retrieve(ids["open_eur"])),
        ("customer", client.v1.customers.retrieve(ids["jo"])),
        ("event", client.v1.events.list(params={"limit": 1}).data[0]),
    ):
        assert set(obj.to_dict()) == set(fixtures[kind]), kind


def _sync(engine: Engine, full: bool = False) -> Any:
    return sync_source(engine, get_source("stripe"), full=full)


def test_a_full_sync_maps_customers_invoices_payments_and_a_quiet_resync_is_one_request(
    engine: Engine, fake: StripeFake
) -> None:
    ids = _seed(fake.state)
    fake.state.act(ids["open_jpy"], "fail_payment")
    fake.config.burst_429 = 4
    report = _sync(engine)  # every 4th request is answered 429: retried, not failed
    assert report.counts["customers"]["inserted"] == 2
    assert report.counts["invoices"]["inserted"] == 5  # the draft is not an invoice yet
    assert report.counts["payments"]["inserted"] == 1
    assert report.counts["payment_attempts"]["inserted"] == 1
    with session_scope(engine) as s:
        jo = s.get(Customer, ids["jo"])
        assert jo is not None
        assert (jo.country, jo.timezone, jo.locale, jo.source) == (
            "DE",
            "Europe/Berlin",
            "de_DE",
            "stripe",
        )
        ada = s.get(Customer, ids["ada"])
        assert ada is not None and (ada.timezone, ada.locale) == ("America/New_York", "en_US")
        rows = {i.source_id: i for i in s.scalars(select(Invoice))}
        assert rows[ids["open_eur"]].invoice_number == "ERP-77"
        assert str(rows[ids["open_jpy"]].amount) == "5400.0000"  # JPY has no minor unit
        assert str(rows[ids["open_usd"]].amount) == "125.5000"
        assert rows[ids["open_usd"]].due_on == dt.date(2026, 11, 10)
        assert rows[ids["open_usd"]].payment_link.endswith(ids["open_usd"])
        assert {r.status for r in rows.values()} == {"open", "paid", "void"}
        intent = fake.state.payments[ids["paid"]][0]["payment"]["payment_intent"]
        assert s.scalar(select(Payment.external_id)) == f"stripe:{intent}"
        attempt = s.scalar(select(PaymentAttempt))
        assert attempt is not None and attempt.outcome == "failed"
    before = fake.state.requests
    quiet = _sync(engine)
    assert quiet.requests == 1 and fake.state.requests - before in (1, 2)  # 2: one 429
    assert quiet.total("inserted") == quiet.total("updated") == 0


def _count(engine: Engine, model: Any) -> int:
    with session_scope(engine) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_an_event_applied_by_the_webhook_and_by_the_sync_counts_once(
    engine: Engine, fake: StripeFake
) -> None:
    ids = _seed(fake.state)
    _sync(engine)
    fake.state.act(ids["open_usd"], "pay")
    paid_event = next(e for e in reversed(fake.state.events) if e["type"] == "invoice_payment.paid")
    with session_scope(engine) as s:
        assert apply_stripe_event(s, paid_event) == ["payment", "invoice_paid"]
    payments = _count(engine, Payment)
    report = _sync(engine)
    assert report.counts["payments"] == {
        "inserted": 0,
        "updated": 0,
        "unchanged": 1,
        "quarantined": 0,
    }
    assert _count(engine, Payment) == payments
    with session_scope(engine) as s:
        assert apply_stripe_event(s, paid_event) == []  # and the webhook after the sync
        status = s.scalar(select(Invoice.status).where(Invoice.source_id == ids["open_usd"]))
    assert status == "paid"


@pytest.mark.prefect
def test_sync_then_run_reminds_exactly_the_open_invoices_and_paying_or_voiding_stops_them(
    prefect_server: None, engine: Engine, fake: StripeFake
) -> None:
    from dunning.flows.payment_reminders import payment_reminders

    ids = _seed(fake.state)
    _load_commands()
    result = runner.invoke(app, ["sync", "stripe", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["counts"]["invoices"]["inserted"] == 5

    def sent(report: Any) -> set[str]:
        frame = report.to_frame()
        return set(frame.loc[frame["outcome"] == "sent", "invoice_number"])

    with session_scope(engine) as s:
        numbers = {i.source_id: i.invoice_number for i in s.scalars(select(Invoice))}
    first = payment_reminders(as_of=AS_OF)
    assert sent(first) == {numbers[ids[k]] for k in ("open_usd", "open_eur", "open_jpy")}

    # Paid and voided in Stripe; planned reminders of both exist when the sync comes.
    client = _client(fake)
    client.v1.invoices.pay(ids["open_usd"])
    client.v1.invoices.void_invoice(ids["open_eur"])
    with session_scope(engine) as s:
        for sid in (ids["open_usd"], ids["open_eur"]):
            inv = s.scalar(select(Invoice).where(Invoice.source_id == sid))
            assert inv is not None
            s.add(
                Reminder(
                    invoice_id=inv.id,
                    customer_id=inv.customer_id,
                    stage="overdue_2",
                    channel="email",
                    status="planned",
                )
            )
    assert runner.invoke(app, ["sync", "stripe", "--json"]).exit_code == 0
    with session_scope(engine) as s:
        held = dict(
            s.execute(
                select(Invoice.source_id, Reminder.reason)
                .join(Invoice, Invoice.id == Reminder.invoice_id)
                .where(Reminder.stage == "overdue_2")
            )
            .tuples()
            .all()
        )
    assert held == {ids["open_usd"]: "paid", ids["open_eur"]: "void"}
    later = payment_reminders(as_of=AS_OF + dt.timedelta(days=7))
    assert sent(later) == {numbers[ids["open_jpy"]]}


def test_the_sync_benchmark_counts_requests_and_a_quiet_sync_costs_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.bench_stripe_sync import measure

    for name in ("DUNNING_STRIPE_API_BASE", "DUNNING_STRIPE_API_KEY"):
        monkeypatch.setenv(name, "set-by-the-benchmark")  # restored after the test
        reload_settings()
    result = measure(150, 30, 0.0, f"sqlite:///{tmp_path / 'bench.db'}")
    # 30 customers + 150 invoices + 15 payments; pages of 100: 1 + 1 + 2 + 1 requests.
    assert result["full"]["inserted"] == 195 and result["full"]["requests"] == 5
    assert result["quiet"]["requests"] == 1 and result["quiet"]["inserted"] == 0
    assert (result["one_paid"]["inserted"], result["one_paid"]["updated"]) == (1, 1)


def test_the_webhook_and_the_sync_book_a_stripe_payment_once_in_either_order(
    engine: Engine, fake: StripeFake
) -> None:
    """The fake's own invoice_payment.paid events go through the real, signature-checking
    webhook receiver and the track-responses core (apply_inbox), before and after syncs."""
    from pydantic import SecretStr
    from starlette.testclient import TestClient

    from dunning.config import WebhookSettings
    from dunning.tracking import apply_inbox
    from dunning.webhooks import create_app
    from tests.tracking_support import STRIPE_SECRET, stripe_request

    ids = _seed(fake.state)
    _sync(engine)
    settings = WebhookSettings(
        webhook_public_url="https://hooks.example.com",
        stripe_webhook_secret=SecretStr(STRIPE_SECRET),
    )

    def deliver(event: dict[str, Any]) -> None:
        with TestClient(create_app(settings, engine)) as client:
            body, headers = stripe_request(event)
            assert client.post("/webhooks/stripe", content=body, headers=headers).status_code == 200
        apply_inbox(engine)

    def paid_event(invoice_id: str) -> dict[str, Any]:
        return next(
            e
            for e in reversed(fake.state.events)
            if e["type"] == "invoice_payment.paid" and e["data"]["object"]["invoice"] == invoice_id
        )

    fake.state.act(ids["open_usd"], "pay")  # webhook first, then the sync
    deliver(paid_event(ids["open_usd"]))
    assert _count(engine, Payment) == 2
    assert _sync(engine).counts["payments"]["inserted"] == 0
    fake.state.act(ids["open_eur"], "pay")  # the sync first, then the webhook
    assert _sync(engine).counts["payments"]["inserted"] == 1
    deliver(paid_event(ids["open_eur"]))
    assert _count(engine, Payment) == 3
    with session_scope(engine) as s:
        statuses = dict(s.execute(select(Invoice.source_id, Invoice.status)).tuples().all())
    assert statuses[ids["open_usd"]] == statuses[ids["open_eur"]] == "paid"

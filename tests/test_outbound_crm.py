"""CRM activity end to end: the payment-reminders flow (real Prefect, real database) writes one
HubSpot note and one Salesforce Task per sent reminder through the official SDKs
(``hubspot-api-client``, ``simple-salesforce``) over real HTTP to the local fakes
(dunning/devtools/fakes/hubspot_app.py, salesforce_app.py), surviving their rate-limit and
expired-session faults; a second run for the same as-of, a replay and a repeated event create
nothing new; a reply adds one more; a customer with no contact is a reported dead letter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dunning.config import OutboundSettings, reload_settings
from dunning.db import session_scope
from dunning.db.models import Invoice, OutboundDelivery, OutboundSubscriber, Reminder
from dunning.devtools.fakes.hubspot_app import HubSpotFake, run_hubspot_fake
from dunning.devtools.fakes.salesforce_app import SalesforceFake, run_salesforce_fake
from dunning.errors import ConfigError
from dunning.ledger.outbox import Event, emit
from dunning.outbound.activities import held, load_crm
from dunning.outbound.delivery import deliver_due
from dunning.outbound.subscribers import listing, replay
from dunning.outbound.targets import load_targets
from tests.factories import add_customer, add_invoice

# Tuesday 24 Nov 2026, 15:00 UTC = 10:00 in New York: inside the default send window.
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def hubspot() -> Iterator[HubSpotFake]:
    with run_hubspot_fake() as fake:
        yield fake


@pytest.fixture(scope="module")
def salesforce() -> Iterator[SalesforceFake]:
    with run_salesforce_fake() as fake:
        yield fake


@pytest.fixture
def crm(
    hubspot: HubSpotFake,
    salesforce: SalesforceFake,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[HubSpotFake, SalesforceFake]:
    """Both fakes emptied; crm.toml configures HubSpot (OAuth refresh) and Salesforce (SOAP
    login) with secrets in the environment."""
    hubspot.reset()
    salesforce.reset()
    hubspot.config.burst_429 = salesforce.config.limit_every = 0
    (tmp_path / "crm.toml").write_text(
        f'[hubspot]\napi_base = "{hubspot.base_url}"\nrefresh_token_env = "HS_REFRESH"\n\n'
        f'[salesforce]\ndomain = "{salesforce.domain}"\n'
    )
    monkeypatch.setenv("DUNNING_CRM_PATH", str(tmp_path / "crm.toml"))
    monkeypatch.setenv("DUNNING_SOURCES_PATH", str(tmp_path / "no-sources.toml"))
    monkeypatch.setenv("HS_REFRESH", hubspot.refresh_token)
    monkeypatch.setenv("DUNNING_HUBSPOT_CLIENT_ID", hubspot.config.client_id)
    monkeypatch.setenv("DUNNING_HUBSPOT_CLIENT_SECRET", hubspot.config.client_secret)
    monkeypatch.setenv("DUNNING_SALESFORCE_USERNAME", salesforce.config.username)
    monkeypatch.setenv("DUNNING_SALESFORCE_PASSWORD", salesforce.config.password)
    monkeypatch.setenv("DUNNING_SALESFORCE_SECURITY_TOKEN", salesforce.config.security_token)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", salesforce.ca_path)
    monkeypatch.setenv("DUNNING_OUTBOUND_BACKOFF_SECONDS", "0")
    reload_settings()
    return hubspot, salesforce


@pytest.fixture
def one_reminder_sent(engine: Engine, crm: tuple[HubSpotFake, SalesforceFake]) -> Callable[[], int]:
    """Call it once the test's CRM configuration is in place: customer C1 (a contact in both
    CRMs) with invoice INV-1, a sent reminder and its reminder.sent event; returns the id."""

    def make() -> int:
        add_customer(engine, "C1")
        add_invoice(engine, "INV-1", "C1")
        for fake in crm:
            fake.add_contact("ada@example.com")
        with session_scope(engine) as s:
            rid = _reminder(s)
            event = Event("reminder.sent", None, "C1", rid, {"stage": "due", "channel": "email"})
            emit(s, [event])
        return rid

    return make


def _portfolio(engine: Engine, hubspot: HubSpotFake, salesforce: SalesforceFake) -> None:
    """C1 and C2 are contacts in both CRMs (C2's address in other letter case); C3 in none."""
    add_customer(engine, "C1")
    add_customer(engine, "C2", email="bo@example.org", phone=None, sms_consent=False)
    add_customer(engine, "C3", email="cy@example.net", phone=None, sms_consent=False)
    add_invoice(engine, "INV-1", "C1", due_on=dt.date(2026, 11, 10))
    add_invoice(engine, "INV-2", "C2", due_on=dt.date(2026, 11, 12))
    add_invoice(engine, "INV-3", "C3", due_on=dt.date(2026, 11, 12))
    for fake in (hubspot, salesforce):
        fake.add_contact("ada@example.com")
        fake.add_contact("Bo@Example.org")


def _sent(engine: Engine) -> dict[int, str]:
    with session_scope(engine) as s:
        return dict(
            s.execute(select(Reminder.id, Reminder.customer_id).where(Reminder.status == "sent"))
            .tuples()
            .all()
        )


def _dead(engine: Engine, target: str) -> list[str]:
    with session_scope(engine) as s:
        return list(
            s.scalars(
                select(OutboundDelivery.last_error)
                .join(OutboundSubscriber, OutboundSubscriber.id == OutboundDelivery.subscriber_id)
                .where(
                    OutboundSubscriber.url == f"internal:{target}",
                    OutboundDelivery.status == "dead",
                )
            )
        )


@pytest.mark.prefect
def test_two_runs_hold_one_activity_per_sent_reminder_through_faults_and_a_reply_adds_one(
    prefect_server: None, engine: Engine, crm: tuple[HubSpotFake, SalesforceFake]
) -> None:
    from dunning.flows.outbound_events import outbound_events
    from dunning.flows.payment_reminders import payment_reminders

    hubspot, salesforce = crm
    _portfolio(engine, hubspot, salesforce)
    hubspot.config.burst_429 = 3  # every third CRM request: 429 TEN_SECONDLY_ROLLING
    salesforce.config.limit_every = 3  # every third REST request: REQUEST_LIMIT_EXCEEDED
    payment_reminders(as_of=AS_OF)
    sent = _sent(engine)
    crm_sent = {rid for rid, cid in sent.items() if cid in ("C1", "C2")}
    assert len(crm_sent) >= 3 and "C3" in sent.values()  # C1 email + sms, C2 email, C3 email
    assert 429 in hubspot.answered and 403 in salesforce.answered  # the faults happened

    # Sessions and tokens expire between the runs; the second run for the same as-of.
    hubspot.expire_tokens()
    salesforce.expire_sessions()
    logins = salesforce.logins
    payment_reminders(as_of=AS_OF)
    assert _sent(engine) == sent

    # A replay of everything and a duplicate reminder.sent create nothing new.
    settings = OutboundSettings(backoff_seconds=0)
    assert replay(engine, AS_OF - dt.timedelta(days=365), settings) > 0
    with session_scope(engine) as s:
        emit(s, [Event("reminder.sent", None, "C1", min(crm_sent), {"stage": "x"})])
    outbound_events()

    def notes() -> dict[int, int]:
        out: dict[int, int] = {}
        for note in hubspot.notes.values():
            rid = int(note["properties"]["hs_note_body"].rsplit("reminder ", 1)[1])
            out[rid] = out.get(rid, 0) + 1
        return out

    def tasks() -> dict[int, int]:
        out: dict[int, int] = {}
        for task in salesforce.tasks.values():
            rid = int(task["Description"].rsplit("reminder ", 1)[1])
            out[rid] = out.get(rid, 0) + 1
        return out

    assert notes() == {rid: 1 for rid in crm_sent}
    assert tasks() == {rid: 1 for rid in crm_sent}
    assert set(held(engine, "hubspot")) == {f"reminder:{rid}" for rid in crm_sent}

    # The body of the note carries the stage, channel, invoice number and balance, never
    # the message body or an address; it sits on the right contact.
    c1 = next(r for r, c in sent.items() if c == "C1")
    note = next(
        n
        for n in hubspot.notes.values()
        if n["properties"]["hs_note_body"].endswith(f"reminder {c1}")
    )
    body = note["properties"]["hs_note_body"]
    assert "invoice INV-1" in body and "balance 100 USD" in body and "stage " in body
    assert "@" not in body and note["contacts"] == ["101"]
    task = next(t for t in salesforce.tasks.values() if t["Description"].endswith(f"reminder {c1}"))
    assert task["Status"] == "Completed" and task["WhoId"] == "003000000000000001"

    # C3 has no contact: reported (dead letter naming the customer, not the address).
    for target in ("hubspot", "salesforce"):
        dead = _dead(engine, target)
        assert dead and all("missing contact" in e and "C3" in e and "@" not in e for e in dead)
    subs = {s["url"]: s for s in listing(engine, settings)}
    assert subs["internal:hubspot"]["dead"] >= 1

    # The expired token was refreshed and the expired session logged in again.
    assert salesforce.logins > logins
    # A reply creates one more activity in each CRM.
    with session_scope(engine) as s:
        emit(s, [Event("reply.received", None, "C1", c1, {"channel": "sms", "keyword": "paid"})])
    hubspot.expire_tokens()
    salesforce.expire_sessions()
    outbound_events()
    outbound_events()
    assert len(hubspot.notes) == len(crm_sent) + 1
    assert len(salesforce.tasks) == len(crm_sent) + 1
    assert any(
        "Customer replied" in n["properties"]["hs_note_body"] for n in hubspot.notes.values()
    )


def test_a_private_app_token_refused_is_a_dead_letter_naming_the_setting(
    engine: Engine,
    crm: tuple[HubSpotFake, SalesforceFake],
    one_reminder_sent: Callable[[], int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hubspot, salesforce = crm
    (tmp_path / "crm.toml").write_text(f'[hubspot]\napi_base = "{hubspot.base_url}"\n')
    monkeypatch.setenv("DUNNING_HUBSPOT_ACCESS_TOKEN", "pat-na1-expired")
    reload_settings()
    one_reminder_sent()
    report = deliver_due(engine, OutboundSettings(backoff_seconds=0))
    assert report.counts["dead"] == 1 and hubspot.notes == {}
    assert "DUNNING_HUBSPOT_ACCESS_TOKEN" in str(report.dead[0]["error"])
    assert "pat-na1" not in str(report.dead)  # never the token itself
    # The valid private token: replay delivers it once.
    monkeypatch.setenv("DUNNING_HUBSPOT_ACCESS_TOKEN", hubspot.config.private_token)
    reload_settings()
    replay(engine, AS_OF - dt.timedelta(days=3650), OutboundSettings())
    assert deliver_due(engine, OutboundSettings()).counts["delivered"] == 1
    assert len(hubspot.notes) == 1


def test_salesforce_wrong_password_is_a_dead_letter_and_oauth_login_works(
    engine: Engine,
    crm: tuple[HubSpotFake, SalesforceFake],
    one_reminder_sent: Callable[[], int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hubspot, salesforce = crm
    (tmp_path / "crm.toml").write_text(f'[salesforce]\ndomain = "{salesforce.domain}"\n')
    monkeypatch.setenv("DUNNING_SALESFORCE_PASSWORD", "wrong")
    reload_settings()
    one_reminder_sent()
    report = deliver_due(engine, OutboundSettings())
    assert report.counts["dead"] == 1 and "INVALID_LOGIN" in str(report.dead[0]["error"])
    assert "wrong" not in str(report.dead)
    # The connected app's OAuth username-password flow instead of the SOAP login.
    monkeypatch.setenv("DUNNING_SALESFORCE_PASSWORD", salesforce.config.password)
    monkeypatch.delenv("DUNNING_SALESFORCE_SECURITY_TOKEN")
    monkeypatch.setenv("DUNNING_SALESFORCE_CONSUMER_KEY", salesforce.config.consumer_key)
    monkeypatch.setenv("DUNNING_SALESFORCE_CONSUMER_SECRET", salesforce.config.consumer_secret)
    reload_settings()
    replay(engine, AS_OF - dt.timedelta(days=3650), OutboundSettings())
    assert deliver_due(engine, OutboundSettings()).counts["delivered"] == 1
    assert [t["WhoId"] for t in salesforce.tasks.values()] == ["003000000000000001"]


def _reminder(session: Session) -> int:
    """A sent reminder of the one invoice (its id)."""
    inv = session.scalars(select(Invoice)).one()
    r = Reminder(
        invoice_id=inv.id,
        customer_id=inv.customer_id,
        stage="due",
        channel="email",
        status="sent",
        balance_due=inv.amount,
        currency=inv.currency,
    )
    session.add(r)
    session.flush()
    return r.id


def test_the_crm_file_refuses_secrets_and_unknown_tables(tmp_path: Path) -> None:
    path = tmp_path / "crm.toml"
    path.write_text('[hubspot]\naccess_token = "pat-secret"\n')
    with pytest.raises(ConfigError, match="access_token_env") as refused:
        load_crm(path)
    assert "pat-secret" not in str(refused.value)
    path.write_text("[pipedrive]\n")
    with pytest.raises(ConfigError, match=r"unknown table \[pipedrive\]"):
        load_crm(path)


def test_no_crm_file_and_no_xero_source_means_no_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUNNING_CRM_PATH", str(tmp_path / "none.toml"))
    monkeypatch.setenv("DUNNING_SOURCES_PATH", str(tmp_path / "none2.toml"))
    reload_settings()
    assert load_targets() == {}

"""The Xero source against the fake Xero, driven by the official ``xero-python`` SDK over HTTP
through Stoplight Prism.

Prism runs in proxy mode with ``--errors`` in front of the fake
(dunning/devtools/fakes/xero_app.py):
every request the SDK makes is validated against Xero's official OpenAPI description
(/work/shared/specs/xero_accounting.yaml) and a violation is answered 422 instead of reaching
the fake, so a non-conforming request fails the sync. The OAuth2 token endpoint is not part of
that description: the SDK reaches it on the fake directly.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from dunning.cli import _load_commands, app
from dunning.config import reload_settings
from dunning.db import session_scope
from dunning.db.models import Customer, Invoice, Payment, Reminder
from dunning.devtools.fakes.xero import XeroFakeState
from dunning.devtools.fakes.xero_app import XeroFake, run_xero_fake
from dunning.errors import ConfigError
from dunning.sources.config import load_sources
from dunning.sources.registry import build_source, get_source
from dunning.sources.sync import SyncFailed, sync_source
from dunning.sources.xero import XeroSource

ROOT = Path(__file__).resolve().parent.parent
PRISM = ROOT / "node_modules" / ".bin" / "prism"
SPEC = Path("/work/shared/specs/xero_accounting.yaml")
# Tuesday 24 Nov 2026, 15:00 UTC: 10:00 in New York, 16:00 in Berlin (both in the window).
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
DUE = dt.date(2026, 11, 10)
runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[XeroFake, str]]:
    """The fake Xero and Prism proxying to it (validating requests): (fake, Prism's API base)."""
    if not PRISM.exists():
        pytest.fail(
            f"Stoplight Prism is not installed at {PRISM}: run "
            "`npm install --no-save @stoplight/prism-cli@5` in the repository root"
        )
    log = tmp_path_factory.mktemp("prism") / "xero.log"
    with run_xero_fake() as fake:
        port = _free_port()
        proc = subprocess.Popen(
            [
                str(PRISM),
                "proxy",
                "--errors",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                str(SPEC),
                f"{fake.base_url}/api.xro/2.0",
            ],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 300  # startup allowance: 0.9 MB spec, busy machine
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"prism exited ({proc.returncode}): {log.read_text()}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"prism did not start within 300 s: {log.read_text()}")
                    time.sleep(0.3)
            # Prism serves the description's paths (/Invoices ...) at its root and forwards
            # them below the upstream's /api.xro/2.0, as Xero's server URL has them.
            yield fake, f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture
def fake(served: tuple[XeroFake, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> XeroFake:
    """A fresh organisation in the fake; sources.toml has `[sources.xero]` through Prism."""
    running, prism_base = served
    running.state = XeroFakeState()
    running.config.burst_429 = 0
    running.config.retry_after = 1
    running.access_tokens.clear()
    (tmp_path / "sources.toml").write_text(
        f'[sources.xero]\nkind = "xero"\ntenant_id = "{running.state.tenant_id}"\n'
        f'api_base = "{prism_base}"\nidentity_base = "{running.base_url}"\n'
        'payment_links = "online_invoice"\n'
    )
    monkeypatch.setenv("DUNNING_SOURCES_PATH", str(tmp_path / "sources.toml"))
    monkeypatch.setenv("DUNNING_XERO_CLIENT_ID", running.config.client_id)
    monkeypatch.setenv("DUNNING_XERO_CLIENT_SECRET", running.config.client_secret)
    reload_settings()
    return running


def _seed(state: XeroFakeState) -> dict[str, str]:
    """Two customers; three open invoices, one paid, one void, one draft, one bill: ids."""
    ada = state.add_contact("Ada", "ada@example.com", "+14155550100", "US")["ContactID"]
    jo = state.add_contact("Jo", "jo@example.de", None, "Germany")["ContactID"]
    ids = {
        "open_usd": state.add_invoice(ada, "125.50", "USD", DUE)["InvoiceID"],
        "open_eur": state.add_invoice(jo, "99.90", "EUR", DUE)["InvoiceID"],
        "open_jpy": state.add_invoice(jo, "5400", "JPY", DUE)["InvoiceID"],
        "paid": state.add_invoice(ada, "10.00", "USD", DUE, status="PAID")["InvoiceID"],
        "void": state.add_invoice(ada, "20.00", "USD", DUE, status="VOIDED")["InvoiceID"],
        "bill": state.add_invoice(ada, "30.00", "USD", DUE, kind="ACCPAY")["InvoiceID"],
    }
    return {"ada": ada, "jo": jo, **ids}


class _Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _source(sleeps: _Sleeps | None = None) -> XeroSource:
    source = build_source(load_sources()["xero"])
    assert isinstance(source, XeroSource)
    if sleeps is not None:
        source._sleep = sleeps
    return source


def test_prism_passes_the_sdks_requests_and_refuses_a_request_off_the_spec(
    fake: XeroFake, served: tuple[XeroFake, str]
) -> None:
    ids = _seed(fake.state)
    source = _source()
    api = source._api()
    since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    page = source._call(
        api.get_invoices, where='Type=="ACCREC"', page=1, page_size=100, if_modified_since=since
    )
    assert {i.invoice_id for i in page.invoices} == {
        ids[k] for k in ("open_usd", "open_eur", "open_jpy", "paid", "void")
    }
    assert api.api_client.last_response.getheader("sl-violations") is None
    assert fake.state.modified_since[-1] == since.isoformat()
    online = source._call(api.get_online_invoice, invoice_id=ids["open_usd"])
    assert online.online_invoices[0].online_invoice_url.startswith("https://in.xero.com/")
    # The same request with an If-Modified-Since that is no date-time never reaches the fake.
    token = next(iter(fake.access_tokens))
    request = urllib.request.Request(
        served[1] + "/Invoices",
        headers={
            "Authorization": f"Bearer {token}",
            "xero-tenant-id": fake.state.tenant_id,
            "If-Modified-Since": "yesterday",
        },
    )
    served_before = fake.state.requests
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 422
    assert "if-modified-since must match format" in refused.value.read().decode()
    assert fake.state.requests == served_before


def _sync(engine: Engine, full: bool = False, sleeps: _Sleeps | None = None) -> Any:
    return sync_source(engine, _source(sleeps), full=full)


def test_a_full_sync_maps_xero_and_a_quiet_resync_is_one_request_per_record_type(
    engine: Engine, fake: XeroFake
) -> None:
    ids = _seed(fake.state)
    fake.config.burst_429, fake.config.retry_after = 3, 2
    sleeps = _Sleeps()
    report = _sync(engine, sleeps=sleeps)  # every 3rd API request is answered 429: retried
    assert sleeps and set(sleeps) == {2.0}  # Retry-After honoured
    assert report.counts["customers"]["inserted"] == 2
    assert report.counts["invoices"]["inserted"] == 5  # not the bill (ACCPAY)
    assert report.counts["payments"]["inserted"] == 1
    with session_scope(engine) as s:
        jo = s.get(Customer, ids["jo"])
        assert jo is not None
        assert (jo.country, jo.timezone, jo.locale, jo.source) == (
            "DE",
            "Europe/Berlin",
            "de_DE",
            "xero",
        )
        ada = s.get(Customer, ids["ada"])
        assert ada is not None and (ada.phone, ada.timezone) == ("+14155550100", "America/New_York")
        rows = {i.source_id: i for i in s.scalars(select(Invoice))}
        assert str(rows[ids["open_usd"]].amount) == "125.5000"
        assert str(rows[ids["open_jpy"]].amount) == "5400.0000"
        assert rows[ids["open_usd"]].due_on == DUE
        assert rows[ids["open_usd"]].payment_link.startswith("https://in.xero.com/")
        assert rows[ids["paid"]].payment_link is None
        assert {r.status for r in rows.values()} == {"open", "paid", "void"}
        payment = s.scalar(select(Payment))
        assert payment is not None and payment.external_id.startswith("xero:")
        assert str(payment.amount) == "10.0000"
    fake.config.burst_429 = 0
    before = fake.state.requests
    quiet = _sync(engine)
    # One token request plus one page per record type, each with If-Modified-Since.
    assert fake.state.requests - before == 3 and quiet.requests == 4
    assert all(fake.state.modified_since[-3:])
    assert quiet.total("inserted") == quiet.total("updated") == 0
    fake.state.pay(ids["open_eur"])
    changed = _sync(engine)
    assert changed.counts["invoices"]["updated"] == 1
    assert changed.counts["payments"]["inserted"] == 1


def test_rate_limits_are_bounded_and_a_long_retry_after_fails_the_sync(
    engine: Engine, fake: XeroFake
) -> None:
    _seed(fake.state)
    fake.config.burst_429, fake.config.retry_after = 1, 0  # every request limited
    with pytest.raises(SyncFailed, match="kept answering 429"):
        _sync(engine, sleeps=_Sleeps())
    fake.config.retry_after = 3600  # the daily limit: nothing to wait for in a sync
    with pytest.raises(SyncFailed, match="sync again later"):
        _sync(engine, sleeps=_Sleeps())
    with session_scope(engine) as s:
        assert s.scalar(select(Invoice)) is None  # nothing half-written


def test_wrong_credentials_or_tenant_fail_with_advice(
    engine: Engine, fake: XeroFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUNNING_XERO_CLIENT_SECRET", "wrong")
    reload_settings()
    with pytest.raises(SyncFailed, match="refused the credentials"):
        _sync(engine)
    monkeypatch.setenv("DUNNING_XERO_CLIENT_SECRET", fake.config.client_secret)
    reload_settings()
    fake.state.tenant_id = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(SyncFailed, match="Xero answered 403.*tenant_id"):
        _sync(engine)
    monkeypatch.delenv("DUNNING_XERO_CLIENT_ID")
    reload_settings()
    with pytest.raises(ConfigError, match="DUNNING_XERO_CLIENT_ID"):
        _source().check()


def test_payment_links_accepts_only_online_invoice(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text('[sources.x]\nkind = "xero"\ntenant_id = "t"\npayment_links = "yes"\n')
    with pytest.raises(ConfigError, match='payment_links must be "online_invoice"'):
        load_sources(path)


@pytest.mark.prefect
def test_sync_then_run_reminds_exactly_the_open_invoices_and_paying_or_voiding_stops_them(
    prefect_server: None, engine: Engine, fake: XeroFake
) -> None:
    from dunning.flows.payment_reminders import payment_reminders

    ids = _seed(fake.state)
    _load_commands()
    result = runner.invoke(app, ["sync", "xero", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["counts"]["invoices"]["inserted"] == 5

    def sent(report: Any) -> set[str]:
        frame = report.to_frame()
        return set(frame.loc[frame["outcome"] == "sent", "invoice_number"])

    with session_scope(engine) as s:
        numbers = {i.source_id: i.invoice_number for i in s.scalars(select(Invoice))}
    first = payment_reminders(as_of=AS_OF)
    assert sent(first) == {numbers[ids[k]] for k in ("open_usd", "open_eur", "open_jpy")}

    # Paid and voided in Xero; planned reminders of both exist when the sync comes.
    for invoice_id, action in ((ids["open_usd"], "pay"), (ids["open_eur"], "void")):
        request = urllib.request.Request(
            f"{fake.base_url}/_fake/xero/invoices/{invoice_id}/{action}", method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
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
    synced = runner.invoke(app, ["sync", "xero", "--json"])
    assert synced.exit_code == 0, synced.stderr
    assert json.loads(synced.stdout)["requests"] == 4  # token + one page per record type
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


@pytest.mark.prefect
def test_a_refresh_token_in_a_secret_block_is_rotated_on_each_sync(
    prefect_server: None, engine: Engine, fake: XeroFake, tmp_path: Path
) -> None:
    from prefect.blocks.system import Secret

    _seed(fake.state)
    Secret(value=fake.issue_refresh()).save("xero-refresh-test", overwrite=True)
    path = tmp_path / "sources.toml"
    path.write_text(path.read_text() + 'refresh_token_block = "xero-refresh-test"\n')
    first = Secret.load("xero-refresh-test").get()
    assert get_source("xero").check().startswith("Xero answered")
    second = Secret.load("xero-refresh-test").get()
    assert second != first and second == fake.refresh_token  # rotated and saved
    assert _sync(engine).counts["invoices"]["inserted"] == 5  # the saved one works
    assert fake.token_requests[-2:] == ["refresh_token", "refresh_token"]
    Secret(value=first).save("xero-refresh-test", overwrite=True)  # a used token
    with pytest.raises(SyncFailed, match="refresh token block"):
        _sync(engine)


@pytest.mark.prefect
def test_each_sent_reminder_adds_one_history_note_on_its_xero_invoice_once(
    prefect_server: None, engine: Engine, fake: XeroFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs for the same as-of, a replay and a rate-limited Xero still leave exactly one
    history note per sent reminder, through Prism (every PUT validated against the spec)."""
    from dunning.config import OutboundSettings
    from dunning.db.models import OutboundDelivery
    from dunning.flows.outbound_events import outbound_events
    from dunning.flows.payment_reminders import payment_reminders
    from dunning.outbound.subscribers import replay
    from tests.factories import add_customer, add_invoice

    monkeypatch.setenv("DUNNING_OUTBOUND_BACKOFF_SECONDS", "0")
    reload_settings()
    ids = _seed(fake.state)
    add_customer(engine, "LOCAL-1")  # an invoice of another source gets no Xero note
    add_invoice(engine, "LOCAL-INV-1", "LOCAL-1", due_on=DUE)
    assert sync_source(engine, _source()).counts["invoices"]["inserted"] == 5
    fake.config.burst_429, fake.config.retry_after = 4, 1  # every 4th request: 429
    payment_reminders(as_of=AS_OF)
    payment_reminders(as_of=AS_OF)
    replay(engine, AS_OF - dt.timedelta(days=365), OutboundSettings())
    outbound_events()
    fake.config.burst_429 = 0
    with session_scope(engine) as s:
        sent = (
            s.execute(
                select(Reminder.id, Invoice.source_id, Invoice.source)
                .join(Invoice, Invoice.id == Reminder.invoice_id)
                .where(Reminder.status == "sent")
            )
            .tuples()
            .all()
        )
        dead = list(
            s.scalars(select(OutboundDelivery.last_error).where(OutboundDelivery.status == "dead"))
        )
    assert dead == []  # Prism found no request off the spec (it answers 422 to those)
    xero_sent = [(rid, sid) for rid, sid, source in sent if source == "xero"]
    assert len(xero_sent) >= 3 and any(source != "xero" for _, _, source in sent)
    notes = {
        invoice_id: [r["Details"] for r in records]
        for invoice_id, records in fake.state.history.items()
    }
    assert sum(len(v) for v in notes.values()) == len(xero_sent)
    for rid, sid in xero_sent:
        assert [d for d in notes[sid] if d.endswith(f"reminder {rid}")] != []
    assert ids["paid"] not in notes and all("@" not in d for v in notes.values() for d in v)

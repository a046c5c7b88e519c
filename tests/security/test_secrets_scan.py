"""After a full run with known fake credentials, no secret and no unmasked email or phone
number appears in logs, Prefect artifacts, exceptions, the ledger's reasons or working files.

Addresses may appear only where they must: the ledger's to_address/body columns, the outbox
and the database itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL
from sqlalchemy import Engine, select

from dunning.config import reload_settings
from dunning.db import session_scope
from dunning.db.models import (
    Customer,
    DeliveryEvent,
    Invoice,
    Reminder,
    ReminderRun,
    WebhookInbox,
)
from dunning.devtools.fakes import run_fakes
from tests.factories import add_customer, add_invoice
from tests.security.prefect_api import read_artifacts, read_logs

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

SID = "AC" + "5ec7e7" * 5 + "ab"  # an identifier, not a secret: Twilio logs it in URLs
TOKEN = "tw0k3n" + "f00d" * 6 + "ab"
API_KEY = "SG.s3cr3tK3yForTheSecretsScan.ThisIsNotARealKeyButItMustNeverBeLogged01234"
WRONG_KEY = "SG.wr0ngK3yThatTheFakeRefuses.AlsoASecretThatMustStayOutOfEveryLog012345"
UNSUB_SECRET = "unsubscribe-hmac-secret-for-the-scan-7f3a"
STRIPE_SECRET = "whsec_secretscan_0123456789"
SECRETS = [TOKEN, API_KEY, WRONG_KEY, UNSUB_SECRET, STRIPE_SECRET]
AS_OF = "2026-11-24T15:00:00+00:00"  # a Tuesday, 10:00 in New York
SDK_LOGGERS = (
    "python_http_client",
    "python_http_client.client",
    "sendgrid",
    "twilio",
    "twilio.http_client",
    "urllib3",
    "httpx",
    "dunning",
    "flows",
    "tasks",
)
DUNNING = str(Path(sys.executable).parent / "dunning")


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DUNNING, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _portfolio_extras(engine: Engine) -> None:
    """Customers whose sends fail at the fake: error texts that quote the address."""
    for cid, phone in (("BAD-NUMBER", "+15005550001"), ("UNSUBSCRIBED", "+15005550004")):
        add_customer(
            engine, cid, name=f"Magic {cid}", email=f"{cid.lower()}@example.net", phone=phone
        )
        add_invoice(engine, f"INV-{cid}", cid, due_on=dt.date(2026, 11, 10))


def _addresses(engine: Engine) -> set[str]:
    with session_scope(engine) as s:
        rows = s.execute(select(Customer.email, Customer.phone)).all()
    return {a for row in rows for a in row if a}


def _ledger_texts(engine: Engine) -> list[str]:
    """Every free-text column that is not allowed to carry personal data."""
    with session_scope(engine) as s:
        texts = [
            f"{r.reason} {r.error_code}"
            for r in s.execute(select(Reminder.reason, Reminder.error_code))
        ]
        texts += [json.dumps(c, default=str) for c in s.scalars(select(ReminderRun.counts))]
        texts += [str(d) for d in s.scalars(select(DeliveryEvent.detail))]
        texts += [str(e) for e in s.scalars(select(WebhookInbox.error))]
        texts += [str(r) for r in s.scalars(select(Invoice.review_reason))]
    return texts


def _home_files(home: Path) -> Iterator[tuple[Path, str]]:
    for path in home.rglob("*"):
        if not path.is_file() or "outbox" in path.relative_to(home).parts:
            continue
        if path.name.endswith((".db", ".db-wal", ".db-shm", ".db-journal")):
            continue
        yield path, path.read_text(encoding="utf-8", errors="replace")


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+\d{8,15}")


def _leaks(where: str, text: str, addresses: set[str]) -> list[str]:
    found = [f"{where}: secret {s[:6]}…" for s in SECRETS if s in text]
    for match in _EMAIL.findall(text) + _PHONE.findall(text):
        if match in addresses or match.lower() in addresses:
            found.append(f"{where}: unmasked {match}")
    return found


def test_a_full_run_leaks_no_secret_and_no_personal_data(
    prefect_server: None,
    engine: Engine,
    db_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Everything at DEBUG, as an operator chasing a delivery problem would run, and captured
    # on the SDK and dunning loggers themselves: Prefect re-configures logging (dictConfig) in
    # this process, which drops pytest's handler from the root logger at a moment that
    # depends on test order. Prefect's own logs are read back from its API below.
    caplog.set_level(logging.DEBUG)
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "handlers", [*logger.handlers, caplog.handler])
        monkeypatch.setattr(logger, "level", logging.DEBUG)
        monkeypatch.setattr(logger, "disabled", False)
    home = tmp_path / "home"
    with run_fakes(
        seed=11,
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        sendgrid_api_key=API_KEY,
        error_rate=0.15,
        callbacks=False,
    ) as fakes:
        env = {
            **os.environ,
            **fakes.env(),
            "DUNNING_HOME": str(home),
            "DUNNING_DATABASE_URL": db_url,
            "DUNNING_UNSUBSCRIBE_SECRET": UNSUB_SECRET,
            "DUNNING_STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "PREFECT_LOGGING_LEVEL": "DEBUG",
            "NO_COLOR": "1",
        }
        seeded = _cli(
            ["seed", "--customers", "12", "--invoices", "30", "--as-of", "2026-11-24", "--json"],
            env,
        )
        assert seeded.returncode == 0, seeded.stderr
        _portfolio_extras(engine)
        run = _cli(["run", "--as-of", AS_OF, "--json"], env)
        assert run.returncode == 0, run.stderr[-3000:]
        summary = json.loads(run.stdout.strip().splitlines()[-1])
        sent_to = {m.to for m in fakes.received()}

        # A second run whose key the provider refuses: the run stops with an exception
        # that must not quote the key, in this process so caplog sees it.
        for name, value in env.items():
            if name.startswith(("DUNNING_", "PREFECT_LOGGING")):
                monkeypatch.setenv(name, value)
        monkeypatch.setenv("DUNNING_SENDGRID_API_KEY", WRONG_KEY)
        reload_settings()
        from dunning.flows.payment_reminders import payment_reminders

        reload_settings()
        # Six days later new stages are due, so the run reaches SendGrid with the wrong key.
        failed = payment_reminders(
            as_of=dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC), return_state=True
        )
        outcome = failed.result(raise_on_failure=False)
        exception_texts = [str(failed.message), repr(outcome), str(outcome)]

    addresses = _addresses(engine)
    assert sent_to and summary["counts"]["sent"] > 0  # the run did send to real addresses
    assert len(addresses) > 10

    sources: list[tuple[str, str]] = [
        ("seed stderr", seeded.stderr),
        ("seed stdout", seeded.stdout),
        ("run stderr", run.stderr),
        ("run stdout", run.stdout),
        ("caplog", caplog.text),
    ]
    sources += [(f"exception {i}", t) for i, t in enumerate(exception_texts)]
    flow_runs = [summary["flow_run_id"]]
    if isinstance(outcome, dict) or hasattr(outcome, "flow_run_id"):
        flow_runs.append(str(getattr(outcome, "flow_run_id", "")))
    flow_runs.append(str(failed.state_details.flow_run_id))
    artifacts = 0
    for flow_run_id in {f for f in flow_runs if f}:
        for art in read_artifacts(flow_run_id):
            artifacts += 1
            sources.append((f"artifact {art['key']}", json.dumps(art["data"])))
        sources += [
            (
                f"prefect log {flow_run_id[:8]}",
                "\n".join(log["message"] for log in read_logs(flow_run_id)),
            )
        ]
    sources += [("ledger", t) for t in _ledger_texts(engine)]
    sources += [(f"file {p.relative_to(home)}", t) for p, t in _home_files(home)]

    assert artifacts >= 2, "the run publishes its summary and failures artifacts"
    leaks = [leak for where, text in sources for leak in _leaks(where, text, addresses)]
    assert leaks == [], "\n".join(sorted(set(leaks)))


def test_the_scanner_finds_what_it_looks_for() -> None:
    addresses = {"ada@example.com", "+14155550100"}
    text = f"sent to Ada@Example.com and +14155550100 with {API_KEY} and {TOKEN}"
    assert len(_leaks("x", text, addresses)) == 4
    assert _leaks("x", "sent to a***@e***.com and +14*****0100", addresses) == []


def test_the_redacting_filter_masks_sdk_debug_lines(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dunning.privacy import SDK_LOGGERS, redact_sdk_logging

    for name in SDK_LOGGERS:  # restored afterwards: the full-run scan must see the real setup
        monkeypatch.setattr(logging.getLogger(name), "filters", [])
    redact_sdk_logging()
    redact_sdk_logging()
    logger = logging.getLogger("python_http_client.client")
    with caplog.at_level(logging.DEBUG, logger="python_http_client.client"):
        logger.debug("HEADERS: %s", {"Authorization": f"Bearer {API_KEY}", "Accept": "json"})
        logger.debug("PAYLOAD: %s", b'{"to": [{"email": "ada@example.com"}]}')
    assert API_KEY not in caplog.text and "ada@example.com" not in caplog.text
    assert "'Authorization': 'Bearer ***'" in caplog.text and "a***@e***.com" in caplog.text
    assert len(logger.filters) == 1

"""One-click unsubscribe (RFC 8058) on the real receiver, over real HTTP (uvicorn)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select

from dunning.channels import check_email_compliance
from dunning.config import reload_settings
from dunning.config.channels import ChannelSettings
from dunning.db import session_scope
from dunning.db.models import Customer, DeliveryEvent, Reminder
from dunning.errors import ConfigError
from dunning.render import unsubscribe_token
from dunning.webhooks import create_app
from tests.factories import add_customer, add_invoice
from tests.operate_support import AS_OF, line, next_plan
from tests.tracking_support import running_app

ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}
SECRET = "unsubscribe-test-secret"
LATER = AS_OF + dt.timedelta(days=7)


def _planned_email(engine: Engine, customer: str = "C1") -> int:
    add_customer(engine, customer, locale="de_DE" if customer == "DE" else "en_US")
    invoice = add_invoice(engine, f"INV-{customer}", customer, due_on=dt.date(2026, 11, 20))
    with session_scope(engine) as s:
        row = Reminder(
            invoice_id=invoice,
            customer_id=customer,
            stage="overdue_1",
            channel="email",
            status="planned",
        )
        s.add(row)
        s.flush()
        return row.id


def _opted_out(engine: Engine, customer: str = "C1") -> bool:
    with session_scope(engine) as s:
        return s.get_one(Customer, customer).email_opt_out


def _app(engine: Engine) -> object:
    return create_app(
        engine=engine, channel_settings=ChannelSettings(unsubscribe_secret=SecretStr(SECRET))
    )


@pytest.mark.prefect
def test_one_click_from_a_sent_eml_skips_the_next_plans_email(
    prefect_server: None, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dunning.flows.payment_reminders import payment_reminders

    add_customer(engine, "C1")
    add_invoice(engine, "INV-1", "C1", due_on=dt.date(2026, 11, 20))
    with running_app(create_app(engine=engine)) as url:
        monkeypatch.setenv("DUNNING_UNSUBSCRIBE_BASE_URL", f"{url}/unsubscribe")
        reload_settings()
        report = payment_reminders(as_of=AS_OF, channels=["email"])
        assert report.counts()["sent"] == 1
        (eml,) = (tmp_path / "home" / "outbox" / "email").glob("*.eml")
        message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        (link,) = re.findall(r"<(http[^>]+)>", str(message["List-Unsubscribe"]))
        assert link.startswith(f"{url}/unsubscribe/")

        page = httpx.get(link)
        assert page.status_code == 200 and 'name="List-Unsubscribe"' in page.text
        assert not _opted_out(engine)  # a GET (a link scanner) changes nothing
        assert line(next_plan(engine, LATER), "INV-1", "email")[0] == "send"

        answer = httpx.post(link, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
        assert answer.status_code == 200
    assert _opted_out(engine)
    assert line(next_plan(engine, LATER), "INV-1", "email") == ("skip", "email_opt_out")
    assert line(next_plan(engine, LATER), "INV-1", "sms")[0] == "send"


def test_one_click_skips_planned_email_and_records_the_event(engine: Engine) -> None:
    rid = _planned_email(engine)
    token = unsubscribe_token(rid, SECRET)
    with running_app(_app(engine)) as url:
        first = httpx.post(
            f"{url}/unsubscribe/{token}", content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK
        )
        again = httpx.post(
            f"{url}/unsubscribe/{token}", content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK
        )
    assert (first.status_code, again.status_code) == (200, 200)
    with session_scope(engine) as s:
        row = s.get_one(Reminder, rid)
        assert (row.status, row.reason) == ("skipped", "email_opt_out")
        events = s.scalars(select(DeliveryEvent.event_type)).all()
    assert events == ["unsubscribe"]  # recorded once for the timeline


def test_multipart_one_click_body_is_accepted(engine: Engine) -> None:
    rid = _planned_email(engine)
    with running_app(_app(engine)) as url:
        answer = httpx.post(
            f"{url}/unsubscribe/{unsubscribe_token(rid, SECRET)}",
            files={"List-Unsubscribe": (None, "One-Click")},
        )
    assert answer.status_code == 200 and _opted_out(engine)


def test_bad_tokens_and_bodies_change_nothing(engine: Engine) -> None:
    rid = _planned_email(engine)
    good = unsubscribe_token(rid, SECRET)
    tampered = [
        unsubscribe_token(rid, "another-secret"),
        f"{rid + 1}{good[len(str(rid)) :]}",
        good[:-1] + ("0" if good[-1] != "0" else "1"),
        "garbage",
        f"{rid}-",
    ]
    with running_app(_app(engine)) as url:
        for token in tampered:
            for method in ("GET", "POST"):
                answer = httpx.request(
                    method,
                    f"{url}/unsubscribe/{token}",
                    content=b"List-Unsubscribe=One-Click",
                    headers=ONE_CLICK,
                )
                assert answer.status_code == 404, (token, method)
        wrong_body = httpx.post(
            f"{url}/unsubscribe/{good}", content=b"unsubscribe=yes", headers=ONE_CLICK
        )
        assert wrong_body.status_code == 400
        assert httpx.get(f"{url}/unsubscribe/{good}").status_code == 200
    assert not _opted_out(engine)
    with session_scope(engine) as s:
        assert s.get_one(Reminder, rid).status == "planned"


def test_the_page_speaks_the_customers_language(engine: Engine) -> None:
    rid = _planned_email(engine, "DE")
    with running_app(_app(engine)) as url:
        confirm = httpx.get(f"{url}/unsubscribe/{unsubscribe_token(rid, SECRET)}")
        assert '<html lang="de">' in confirm.text and "Abmelden" in confirm.text
        done = httpx.post(
            f"{url}/unsubscribe/{unsubscribe_token(rid, SECRET)}",
            content=b"List-Unsubscribe=One-Click",
            headers=ONE_CLICK,
        )
    assert "Sie sind abgemeldet" in done.text


@pytest.mark.parametrize(
    "provider_env",
    [{"DUNNING_SENDGRID_API_KEY": "SG.key"}, {"DUNNING_SMTP_HOST": "smtp.example.net"}],
)
def test_real_email_refuses_the_development_unsubscribe_defaults(
    provider_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in provider_env.items():
        monkeypatch.setenv(name, value)
        reload_settings()
    with pytest.raises(
        ConfigError, match="DUNNING_UNSUBSCRIBE_SECRET.*DUNNING_UNSUBSCRIBE_BASE_URL"
    ):
        check_email_compliance()
    monkeypatch.setenv("DUNNING_UNSUBSCRIBE_SECRET", "a-real-secret")
    reload_settings()
    with pytest.raises(ConfigError) as caught:
        check_email_compliance()
    assert "DUNNING_UNSUBSCRIBE_BASE_URL" in str(caught.value)
    assert "DUNNING_UNSUBSCRIBE_SECRET" not in str(caught.value)
    monkeypatch.setenv("DUNNING_UNSUBSCRIBE_BASE_URL", "https://hooks.acme.test/unsubscribe")
    reload_settings()
    check_email_compliance()


def test_the_outbox_keeps_the_development_defaults() -> None:
    check_email_compliance()  # nothing leaves the machine


def test_dunning_run_refuses_before_prefect_starts(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from dunning.cli import _load_commands
    from dunning.cli.app import app

    _load_commands()
    monkeypatch.setenv("DUNNING_SENDGRID_API_KEY", "SG.key")
    reload_settings()
    result = CliRunner().invoke(app, ["run", "--as-of", AS_OF.isoformat()])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert "DUNNING_UNSUBSCRIBE_SECRET" in str(result.exception)

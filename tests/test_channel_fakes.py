"""Channels from the factory against the local fake providers (dunning.devtools.fakes), end to end:
compose -> get_channel -> send_batch, with the fakes' real wire protocols and faults."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from dunning.channels import get_channel
from dunning.config import reload_settings
from dunning.core.messages import ReminderData
from dunning.devtools.fakes import RunningFakes, env_for, run_fakes
from dunning.errors import ProviderAuthError
from dunning.render import compose


def reminder(rid: int, channel: str, **changes: object) -> ReminderData:
    data = ReminderData(
        reminder_id=rid,
        invoice_id=1,
        invoice_number=f"INV-{rid}",
        customer_id="C-1",
        stage="overdue_1",
        channel=channel,
        segment=None,
        tone="neutral",
        customer_name="Jane",
        email=f"jane{rid}@example.com",
        phone="+4915112345678",
        locale="en_GB",
        timezone="Europe/London",
        country="GB",
        currency="GBP",
        amount=Decimal("50.00"),
        balance_due=Decimal("50.00"),
        due_on=dt.date(2026, 3, 1),
        days_overdue=3,
        payment_link="https://pay.example.com/1",
    )
    return dataclasses.replace(data, **changes)  # type: ignore[arg-type]


def _point_at(fakes: RunningFakes, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env_for(fakes.base_url, fakes.context).items():
        monkeypatch.setenv(name, value)
        reload_settings()
    monkeypatch.setenv("DUNNING_PROVIDER_TIMEOUT_SECONDS", "1")
    reload_settings()


def test_email_and_sms_reach_the_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    with run_fakes(seed=3, callbacks=False) as fakes:
        _point_at(fakes, monkeypatch)
        email = get_channel("email")
        sms = get_channel("sms")
        assert (email.provider, sms.provider) == ("sendgrid", "twilio")
        sent = email.send_batch([compose(reminder(i, "email")) for i in (1, 2)])
        texts = sms.send_batch([compose(reminder(3, "sms"))])
        received = fakes.state.received()
    assert all(r.ok and r.provider_message_id for r in sent + texts)
    by_provider = {(r.provider, r.reminder_id) for r in received}
    assert {("sendgrid", "1"), ("sendgrid", "2")} <= by_provider
    sms_in = [r for r in received if r.provider == "twilio"]
    assert sms_in[0].message_id == texts[0].provider_message_id
    assert sms_in[0].body.endswith("Reply STOP to opt out")


def test_magic_numbers_are_classified(monkeypatch: pytest.MonkeyPatch) -> None:
    with run_fakes(seed=1, callbacks=False) as fakes:
        _point_at(fakes, monkeypatch)
        results = get_channel("sms").send_batch(
            [
                compose(reminder(1, "sms", phone="+15005550001")),
                compose(reminder(2, "sms", phone="+15005550004")),
                compose(reminder(3, "sms", phone="+15005550009")),
            ]
        )
    assert [r.error_code for r in results] == ["21211", "21610", "21614"]
    assert results[0].invalid_address and results[1].opt_out and results[2].invalid_address
    assert not any(r.transient for r in results)


def test_throttling_is_transient_with_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    with run_fakes(seed=2, callbacks=False, burst_429=2, retry_after_s=3) as fakes:
        _point_at(fakes, monkeypatch)
        monkeypatch.setenv("DUNNING_SEND_CONCURRENCY", "1")
        reload_settings()
        # Different templates, so SendGrid gets two requests (same-template mail is bulked).
        email = get_channel("email").send_batch(
            [compose(reminder(1, "email")), compose(reminder(2, "email", locale="de_DE"))]
        )
        sms = get_channel("sms").send_batch([compose(reminder(i, "sms")) for i in (3, 4)])
    for results in (email, sms):
        assert results[0].ok
        assert results[1].transient and results[1].retry_after is not None
        assert 0 < results[1].retry_after <= 3


def test_server_errors_and_hangs_are_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    with run_fakes(seed=4, callbacks=False, error_rate=1.0) as fakes:
        _point_at(fakes, monkeypatch)
        failed = get_channel("email").send_batch([compose(reminder(1, "email"))])[0]
    assert failed.transient and failed.error_code in ("http_500", "http_503")
    with run_fakes(seed=4, callbacks=False, timeout_rate=1.0, hang_s=5) as fakes:
        _point_at(fakes, monkeypatch)
        hung = get_channel("sms").send_batch([compose(reminder(2, "sms"))])[0]
    assert hung.transient and hung.error_code == "timeout"


def test_wrong_credentials_stop_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    with run_fakes(seed=5, callbacks=False) as fakes:
        _point_at(fakes, monkeypatch)
        monkeypatch.setenv("DUNNING_SENDGRID_API_KEY", "SG.wrong-key")
        monkeypatch.setenv("DUNNING_TWILIO_AUTH_TOKEN", "wrong-token")
        reload_settings()
        with pytest.raises(ProviderAuthError) as email_info:
            get_channel("email").send_batch([compose(reminder(1, "email"))])
        with pytest.raises(ProviderAuthError) as sms_info:
            get_channel("sms").send_batch([compose(reminder(2, "sms"))])
    assert "SG.wrong-key" not in str(email_info.value)
    assert "wrong-token" not in str(sms_info.value)

"""Outbox channel and the channel factory (provider choice from settings)."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from dunning.channels import get_channel, resolve_provider
from dunning.channels.outbox import OutboxChannel
from dunning.channels.sendgrid import SendGridChannel
from dunning.channels.smtp import SmtpChannel
from dunning.channels.twilio import TwilioChannel
from dunning.config import reload_settings
from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage
from dunning.errors import ConfigError

LIST_UNSUBSCRIBE = (
    "<mailto:unsubscribe@acme.example?subject=unsubscribe%20"
    + "9f" * 40
    + ">, <https://hooks.acme.example/unsubscribe/"
    + "9f" * 40
    + ">"
)


def email_message(rid: int, text: str = "Dear Jane, please pay.") -> OutboundMessage:
    return OutboundMessage(
        reminder_id=rid,
        channel="email",
        to="jane@example.com",
        text=text,
        subject="Invoice INV-1",
        html="<p>Dear Jane</p>",
        headers={
            "List-Unsubscribe": LIST_UNSUBSCRIBE,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        custom_args={"reminder_id": str(rid)},
    )


def test_default_is_outbox_writing_files(tmp_path: Path) -> None:
    email_channel = get_channel("email")
    sms_channel = get_channel("sms")
    assert isinstance(email_channel, OutboxChannel) and email_channel.provider == "outbox"
    results = email_channel.send_batch([email_message(3)])
    sms = OutboundMessage(reminder_id=4, channel="sms", to="+4915112345678", text="Pay now")
    sms_results = sms_channel.send_batch([sms])
    assert results[0].ok and results[0].provider_message_id == "outbox-3"
    assert sms_results[0].provider_message_id == "outbox-4"
    home = tmp_path / "home" / "outbox"  # DUNNING_HOME from conftest
    raw = (home / "email" / "3.eml").read_bytes()
    assert f"\nList-Unsubscribe: {LIST_UNSUBSCRIBE}\n".encode() in raw  # raw, one line
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["To"] == "jane@example.com" and parsed["X-Dunning-Reminder-Id"] == "3"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_body(("html",)) is not None and parsed.get_body(("plain",)) is not None
    assert (home / "sms" / "4.txt").read_text() == "To: +4915112345678\n\nPay now\n"


def test_outbox_is_idempotent(tmp_path: Path) -> None:
    channel = OutboxChannel("email", tmp_path, ChannelSettings())
    first = channel.send_batch([email_message(9, "first")])
    again = channel.send_batch([email_message(9, "second")])
    assert first == again
    assert "first" in channel.path_for(email_message(9)).read_text()
    assert list((tmp_path / "email").iterdir()) == [tmp_path / "email" / "9.eml"]


def test_factory_picks_providers_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.conventional-name")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok")
    monkeypatch.setenv("DUNNING_TWILIO_FROM_NUMBER", "+15005550006")
    monkeypatch.setenv("DUNNING_SENDGRID_BASE_URL", "http://127.0.0.1:9")
    reload_settings()
    sendgrid = get_channel("email")
    assert isinstance(sendgrid, SendGridChannel) and sendgrid.base_url == "http://127.0.0.1:9"
    assert isinstance(get_channel("sms"), TwilioChannel)
    monkeypatch.setenv("DUNNING_EMAIL_PROVIDER", "outbox")
    reload_settings()
    assert isinstance(get_channel("email"), OutboxChannel)


def test_factory_smtp_when_host_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("DUNNING_SMTP_PASSWORD", "pw-secret")
    reload_settings()
    channel = get_channel("email")
    assert isinstance(channel, SmtpChannel) and "pw-secret" not in repr(channel)


@pytest.mark.parametrize(
    ("env", "kind", "needle"),
    [
        ({"DUNNING_EMAIL_PROVIDER": "sendgrid"}, "email", "DUNNING_SENDGRID_API_KEY"),
        ({"DUNNING_EMAIL_PROVIDER": "smtp"}, "email", "DUNNING_SMTP_HOST"),
        (
            {"DUNNING_SMS_PROVIDER": "twilio", "TWILIO_AUTH_TOKEN": "tok-secret"},
            "sms",
            "DUNNING_TWILIO_ACCOUNT_SID",
        ),
    ],
)
def test_selected_provider_without_credentials_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], kind: str, needle: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
        reload_settings()
    with pytest.raises(ConfigError) as info:
        get_channel(kind)
    assert needle in str(info.value) and "tok-secret" not in str(info.value)


def test_unknown_channel_kind() -> None:
    with pytest.raises(ConfigError, match="unknown channel 'fax'"):
        resolve_provider("fax", ChannelSettings())

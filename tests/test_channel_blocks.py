"""Credentials from Prefect blocks: saved to a real (test) Prefect server, loaded by the
factory, secrets hidden."""

from __future__ import annotations

import pytest
from channel_support import Scripted, stub_provider
from pydantic import SecretStr

from dunning.channels import get_channel
from dunning.channels.blocks import SendGridCredentials, SmtpCredentials, TwilioCredentials
from dunning.channels.sendgrid import SendGridChannel
from dunning.channels.smtp import SmtpChannel
from dunning.channels.twilio import TwilioChannel
from dunning.config import reload_settings
from dunning.core.messages import OutboundMessage
from dunning.errors import ConfigError

pytestmark = pytest.mark.prefect


def test_blocks_feed_the_factory(prefect_server: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with stub_provider(Scripted(202, headers={"X-Message-Id": "from-block"})) as stub:
        SendGridCredentials(
            api_key=SecretStr("SG.block-secret"), base_url=stub.base_url, timeout_seconds=2
        ).save("sg-test", overwrite=True)
        monkeypatch.setenv("DUNNING_SENDGRID_BLOCK", "sg-test")
        reload_settings()
        channel = get_channel("email")
        assert isinstance(channel, SendGridChannel) and channel.base_url == stub.base_url
        result = channel.send_batch(
            [
                OutboundMessage(
                    reminder_id=1, channel="email", to="jane@example.com", text="t", subject="s"
                )
            ]
        )[0]
    assert result.ok and result.provider_message_id == "from-block"
    assert stub.requests[0].headers["Authorization"] == "Bearer SG.block-secret"

    TwilioCredentials(
        account_sid="AC" + "2" * 32,
        auth_token=SecretStr("tw-block-secret"),
        from_number="+15005550006",
    ).save("tw-test", overwrite=True)
    SmtpCredentials(
        host="smtp.example.com", username="u", password=SecretStr("smtp-block-secret")
    ).save("smtp-test", overwrite=True)
    monkeypatch.setenv("DUNNING_TWILIO_BLOCK", "tw-test")
    monkeypatch.setenv("DUNNING_EMAIL_PROVIDER", "smtp")
    monkeypatch.setenv("DUNNING_SMTP_BLOCK", "smtp-test")
    reload_settings()
    assert isinstance(get_channel("sms"), TwilioChannel)
    smtp = get_channel("email")
    assert isinstance(smtp, SmtpChannel) and smtp.host == "smtp.example.com"
    loaded = TwilioCredentials.load("tw-test")
    assert "tw-block-secret" not in repr(loaded) and "tw-block-secret" not in str(loaded)


def test_missing_block_is_a_config_error(
    prefect_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUNNING_TWILIO_BLOCK", "does-not-exist")
    reload_settings()
    with pytest.raises(ConfigError, match="'does-not-exist'.*TwilioCredentials"):
        get_channel("sms")

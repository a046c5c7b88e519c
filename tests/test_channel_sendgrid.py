"""SendGrid channel: the official SDK against a scripted HTTP server on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from channel_support import Scripted, stub_provider
from pydantic import SecretStr

from dunning.channels.sendgrid import SendGridChannel
from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage
from dunning.errors import ProviderAuthError

KEY = "SG.test-key-never-shown"


def message(rid: int, to: str = "jane@example.com") -> OutboundMessage:
    return OutboundMessage(
        reminder_id=rid,
        channel="email",
        to=to,
        text="plain body",
        subject="Invoice INV-1",
        html="<p>html body</p>",
        headers={
            "List-Unsubscribe": "<https://u.example/1-abc>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        custom_args={"reminder_id": str(rid)},
    )


def channel(base_url: str, **changes: object) -> SendGridChannel:
    settings = ChannelSettings(
        email_from="billing@acme.example", email_from_name="Acme Billing", **changes
    )  # type: ignore[arg-type]
    return SendGridChannel(settings, SecretStr(KEY), base_url, timeout=0.5)


def test_sends_mail_with_parts_headers_and_custom_args() -> None:
    with stub_provider(Scripted(202, headers={"X-Message-Id": "sg-msg-1"})) as stub:
        results = channel(stub.base_url).send_batch([message(1)])
    assert results[0].ok and results[0].provider_message_id == "sg-msg-1"
    req = stub.requests[0]
    assert req.method == "POST" and req.path == "/v3/mail/send"
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    body = json.loads(req.body)
    assert body["from"] == {"email": "billing@acme.example", "name": "Acme Billing"}
    assert body["personalizations"][0]["to"] == [{"email": "jane@example.com"}]
    assert body["subject"] == "Invoice INV-1"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert body["personalizations"][0]["custom_args"] == {"reminder_id": "1"}


def test_batch_returns_one_result_per_message_in_order() -> None:
    script = [
        Scripted(202, headers={"X-Message-Id": "a"}),
        Scripted(400, {"errors": [{"message": "bad to jane@example.com"}]}),
        Scripted(429, headers={"Retry-After": "9"}),
        Scripted(503),
        Scripted(413),
        Scripted(202, headers={"X-Message-Id": "b"}),
    ]
    with stub_provider(*script) as stub:
        results = channel(stub.base_url, send_concurrency=1).send_batch(
            [message(i) for i in range(1, 7)]
        )
    assert [r.reminder_id for r in results] == [1, 2, 3, 4, 5, 6]
    assert [r.ok for r in results] == [True, False, False, False, False, True]
    assert [r.error_code for r in results] == [
        None,
        "http_400",
        "http_429",
        "http_503",
        "http_413",
        None,
    ]
    assert [r.transient for r in results] == [False, False, True, True, False, False]
    assert results[2].retry_after == 9.0
    assert "jane@example.com" not in (results[1].error or "")


def test_concurrent_batch_keeps_order() -> None:
    with stub_provider(Scripted(202, headers={"X-Message-Id": "x"})) as stub:
        results = channel(stub.base_url, send_concurrency=4).send_batch(
            [message(i) for i in range(20)]
        )
    assert [r.reminder_id for r in results] == list(range(20))
    assert all(r.ok for r in results) and len(stub.requests) == 20


def test_unauthorized_raises_without_the_key() -> None:
    with stub_provider(Scripted(401, {"errors": [{"message": "bad key"}]})) as stub:
        with pytest.raises(ProviderAuthError) as info:
            channel(stub.base_url).send_batch([message(1)])
    assert "DUNNING_SENDGRID_API_KEY" in str(info.value)
    assert KEY not in str(info.value) and KEY not in repr(channel(stub.base_url))


def test_timeout_and_connection_refused_are_transient() -> None:
    with stub_provider(Scripted(202, delay=2.0)) as stub:
        timed_out = channel(stub.base_url).send_batch([message(1)])[0]
        dead = stub.base_url
    assert timed_out.transient and timed_out.error_code == "timeout"
    refused = channel(dead).send_batch([message(2)])[0]
    assert refused.transient and not refused.ok and refused.error_code == "connection_error"

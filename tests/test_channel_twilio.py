"""Twilio channel: the official SDK against a scripted HTTP server on 127.0.0.1."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from channel_support import FakeClock, Scripted, stub_provider
from pydantic import SecretStr

from dunning.channels.ratelimit import TokenBucket
from dunning.channels.twilio import TwilioChannel
from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage
from dunning.errors import ConfigError, ProviderAuthError

SID = "AC" + "1" * 32
TOKEN = "twilio-token-never-shown"


def created(sid: str) -> Scripted:
    return Scripted(201, {"sid": sid, "status": "queued", "account_sid": SID})


def error(status: int, code: int, msg: str = "error", **headers: str) -> Scripted:
    return Scripted(status, {"code": code, "message": msg, "status": status}, headers)


def message(rid: int) -> OutboundMessage:
    return OutboundMessage(
        reminder_id=rid,
        channel="sms",
        to="+4915112345678",
        text="Acme: invoice INV-1 is 3 days overdue. Reply STOP to opt out",
    )


def channel(base_url: str, **kwargs: object) -> TwilioChannel:
    return TwilioChannel(
        ChannelSettings(send_concurrency=1),
        SID,
        SecretStr(TOKEN),
        from_number="+15005550006",
        base_url=base_url,
        timeout=0.5,
        **kwargs,
    )  # type: ignore[arg-type]


def test_creates_message_with_callback() -> None:
    with stub_provider(created("SM" + "a" * 32)) as stub:
        results = channel(
            stub.base_url, status_callback_url="https://hooks.example/twilio/status"
        ).send_batch([message(5)])
    assert results[0].ok and results[0].provider_message_id == "SM" + "a" * 32
    req = stub.requests[0]
    assert req.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    form = parse_qs(req.body.decode())
    assert form["To"] == ["+4915112345678"] and form["From"] == ["+15005550006"]
    assert form["Body"][0].endswith("Reply STOP to opt out")
    # The reminder id rides in the (Twilio-signed) URL so a timed-out send can be settled.
    assert form["StatusCallback"] == ["https://hooks.example/twilio/status?reminder_id=5"]


def test_messaging_service_instead_of_from() -> None:
    with stub_provider(created("SMx")) as stub:
        TwilioChannel(
            ChannelSettings(),
            SID,
            SecretStr(TOKEN),
            messaging_service_sid="MG1",
            base_url=stub.base_url,
        ).send_batch([message(1)])
    form = parse_qs(stub.requests[0].body.decode())
    assert form["MessagingServiceSid"] == ["MG1"] and "From" not in form


def test_errors_are_classified_per_message() -> None:
    script = [
        error(400, 21211, "The 'To' number +4915112345678 is not valid"),
        error(400, 21610, "unsubscribed"),
        error(429, 20429, "Too Many Requests", **{"Retry-After": "4"}),
        Scripted(500, {"message": "oops"}),
        created("SMok"),
    ]
    with stub_provider(*script) as stub:
        results = channel(stub.base_url).send_batch([message(i) for i in range(5)])
    assert [r.error_code for r in results] == ["21211", "21610", "20429", "http_500", None]
    assert results[0].invalid_address and not results[0].transient
    assert "+4915112345678" not in (results[0].error or "")
    assert results[1].opt_out and not results[1].transient
    assert results[2].transient and results[2].retry_after == 4.0
    assert results[3].transient
    assert results[4].ok and results[4].provider_message_id == "SMok"


def test_auth_error_raises_without_the_token() -> None:
    with stub_provider(error(401, 20003, "Authenticate")) as stub:
        with pytest.raises(ProviderAuthError) as info:
            channel(stub.base_url).send_batch([message(1)])
    assert "DUNNING_TWILIO_AUTH_TOKEN" in str(info.value) and TOKEN not in str(info.value)
    assert TOKEN not in repr(channel(stub.base_url))


def test_timeout_and_refused_connection_are_transient() -> None:
    with stub_provider(Scripted(201, {"sid": "SMlate"}, delay=2.0)) as stub:
        late = channel(stub.base_url).send_batch([message(1)])[0]
        dead = stub.base_url
    assert late.transient and late.error_code == "timeout"
    refused = channel(dead).send_batch([message(2)])[0]
    assert refused.transient and refused.error_code == "connection_error"


def test_needs_a_sender() -> None:
    with pytest.raises(ConfigError, match="DUNNING_TWILIO_FROM_NUMBER"):
        TwilioChannel(ChannelSettings(), SID, SecretStr(TOKEN))


def test_send_batch_keeps_to_the_rate_limit() -> None:
    clock = FakeClock()
    with stub_provider(created("SMr")) as stub:
        ch = channel(stub.base_url)
        ch.bucket = TokenBucket(rate=4, capacity=1, clock=clock, sleep=clock.sleep)
        results = ch.send_batch([message(i) for i in range(5)])
    assert all(r.ok for r in results) and len(stub.requests) == 5
    assert clock.slept == [0.25, 0.25, 0.25, 0.25]  # one token up front, then 4 per second

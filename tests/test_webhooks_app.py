"""The webhook receiver: real ASGI requests with real signatures into a real inbox."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select
from starlette.testclient import TestClient
from tracking_support import (
    STRIPE_SECRET,
    TWILIO_TOKEN,
    sendgrid_headers,
    sendgrid_keys,
    sg_event,
    stripe_event,
    stripe_request,
    twilio_form,
)

from dunning.config import WebhookSettings, reload_settings
from dunning.config.channels import ChannelSettings
from dunning.db import session_scope
from dunning.db.models import WebhookInbox
from dunning.errors import ConfigError
from dunning.webhooks import create_app

PUBLIC = "https://hooks.example.com"
KEY, PUBLIC_KEY = sendgrid_keys()


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    settings = WebhookSettings(
        webhook_public_url=PUBLIC,
        sendgrid_webhook_public_key=PUBLIC_KEY,
        stripe_webhook_secret=SecretStr(STRIPE_SECRET),
        webhook_max_body_bytes=4096,
    )
    twilio = ChannelSettings(
        twilio_account_sid="AC" + "0" * 32, twilio_auth_token=SecretStr(TWILIO_TOKEN)
    )
    with TestClient(create_app(settings, engine, twilio), base_url="http://127.0.0.1:8000") as c:
        yield c


def inbox(engine: Engine) -> list[tuple[str, str, str | None]]:
    with session_scope(engine) as s:
        rows = s.execute(
            select(WebhookInbox.provider, WebhookInbox.event_id, WebhookInbox.event_type).order_by(
                WebhookInbox.id
            )
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_sendgrid_batch_is_stored_one_row_per_event_and_replay_stores_nothing(
    client: TestClient, engine: Engine
) -> None:
    body = json.dumps([sg_event("delivered", "e1", 1), sg_event("open", "e2", 1)]).encode()
    url = "/webhooks/sendgrid/events"
    first = client.post(url, content=body, headers=sendgrid_headers(KEY, body))
    assert first.status_code == 200 and first.json() == {"stored": 2, "duplicates": 0}
    again = client.post(url, content=body, headers=sendgrid_headers(KEY, body))
    assert again.json() == {"stored": 0, "duplicates": 2}
    assert inbox(engine) == [("sendgrid", "e1", "delivered"), ("sendgrid", "e2", "open")]


@pytest.mark.parametrize("tamper", ["body", "key", "old", "no_signature", "garbage_signature"])
def test_forged_sendgrid_requests_are_refused_and_store_nothing(
    client: TestClient, engine: Engine, tamper: str
) -> None:
    body = json.dumps([sg_event("delivered", "e1", 1)]).encode()
    headers = sendgrid_headers(KEY, body)
    if tamper == "body":
        body = body.replace(b"delivered", b"bounce")
    elif tamper == "key":
        headers = sendgrid_headers(sendgrid_keys()[0], body)
    elif tamper == "old":
        headers = sendgrid_headers(KEY, body, timestamp=int(time.time()) - 301)
    elif tamper == "no_signature":
        del headers["X-Twilio-Email-Event-Webhook-Signature"]
    else:
        headers["X-Twilio-Email-Event-Webhook-Signature"] = "not base64!!"
    response = client.post("/webhooks/sendgrid/events", content=body, headers=headers)
    assert response.status_code in (401, 403)
    assert inbox(engine) == []


def test_signed_but_malformed_sendgrid_body_is_400(client: TestClient, engine: Engine) -> None:
    body = json.dumps([{"event": "delivered"}]).encode()  # no sg_event_id
    response = client.post(
        "/webhooks/sendgrid/events", content=body, headers=sendgrid_headers(KEY, body)
    )
    assert response.status_code == 400 and inbox(engine) == []


def test_twilio_status_verified_against_the_public_url(client: TestClient, engine: Engine) -> None:
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+4915112345678"}
    body, headers = twilio_form(PUBLIC + "/webhooks/twilio/status", params)
    response = client.post("/webhooks/twilio/status", content=body, headers=headers)
    assert response.status_code == 200
    # Signed for the local URL instead of the public one: refused.
    body, local = twilio_form(
        "http://127.0.0.1:8000/webhooks/twilio/status", {**params, "MessageStatus": "failed"}
    )
    assert client.post("/webhooks/twilio/status", content=body, headers=local).status_code == 403
    assert inbox(engine) == [("twilio", "SM1:delivered", "delivered")]


def test_twilio_inbound_answers_empty_twiml(client: TestClient, engine: Engine) -> None:
    params = {"MessageSid": "SM9", "From": "+4915112345678", "Body": "STOP"}
    body, headers = twilio_form(PUBLIC + "/webhooks/twilio/inbound", params)
    response = client.post("/webhooks/twilio/inbound", content=body, headers=headers)
    assert response.status_code == 200 and "<Response></Response>" in response.text
    forged = body.replace(b"STOP", b"START")
    assert (
        client.post("/webhooks/twilio/inbound", content=forged, headers=headers).status_code == 403
    )
    assert inbox(engine) == [("twilio", "SM9", "inbound")]


def test_stripe_signature_and_tolerance(client: TestClient, engine: Engine) -> None:
    event = stripe_event("evt_1", "invoice.paid", {"number": "INV-1"})
    body, headers = stripe_request(event)
    assert client.post("/webhooks/stripe", content=body, headers=headers).status_code == 200
    assert client.post("/webhooks/stripe", content=body, headers=headers).json()["duplicates"] == 1
    for bad_body, bad_headers in (
        stripe_request(stripe_event("evt_2", "invoice.paid", {}), secret="whsec_wrong"),
        stripe_request(stripe_event("evt_3", "invoice.paid", {}), timestamp=int(time.time()) - 400),
        (body.replace(b"evt_1", b"evt_4"), headers),
    ):
        response = client.post("/webhooks/stripe", content=bad_body, headers=bad_headers)
        assert response.status_code == 403, response.text
    assert inbox(engine) == [("stripe", "evt_1", "invoice.paid")]


@pytest.mark.parametrize("case", ["oversized", "content_type", "not_json"])
def test_bad_requests_get_4xx(client: TestClient, engine: Engine, case: str) -> None:
    expected: dict[str, Any] = {"oversized": 413, "content_type": 415, "not_json": 400}
    if case == "oversized":
        event = stripe_event("evt_big", "invoice.paid", {"pad": "x" * 5000})
        body, headers = stripe_request(event)
    elif case == "content_type":
        body, headers = stripe_request(stripe_event("evt_ct", "invoice.paid", {}))
        headers["Content-Type"] = "text/plain"
    else:
        body = b"{not json"
        headers = sendgrid_headers(KEY, body)
        response = client.post("/webhooks/sendgrid/events", content=body, headers=headers)
        assert response.status_code == expected[case] and inbox(engine) == []
        return
    response = client.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == expected[case]
    assert inbox(engine) == []


def test_unconfigured_provider_is_503_and_bad_key_is_a_config_error(engine: Engine) -> None:
    with TestClient(create_app(WebhookSettings(), engine)) as c:
        body, headers = stripe_request(stripe_event("evt_1", "invoice.paid", {}))
        response = c.post("/webhooks/stripe", content=body, headers=headers)
        assert response.status_code == 503 and "not configured" in response.text
    with pytest.raises(ConfigError, match="DUNNING_SENDGRID_WEBHOOK_PUBLIC_KEY"):
        create_app(WebhookSettings(sendgrid_webhook_public_key="bm90IGEga2V5"), engine)


def test_receiver_reads_the_twilio_account_sending_uses(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only Twilio's conventional names set: sending accepted them, the receiver now does too
    # (one configuration, dunning.channels.twilio_config).
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    reload_settings()
    settings = WebhookSettings(webhook_public_url=PUBLIC)
    url = PUBLIC + "/webhooks/twilio/status"
    params = {"MessageSid": "SMconv", "MessageStatus": "delivered"}
    body, headers = twilio_form(url, params)
    with TestClient(create_app(settings, engine), base_url="http://127.0.0.1:8000") as c:
        assert c.post("/webhooks/twilio/status", content=body, headers=headers).status_code == 200
    assert ("twilio", "SMconv:delivered", "delivered") in inbox(engine)


def test_twilio_voice_requests_are_verified_before_anything_is_said(
    client: TestClient, engine: Engine
) -> None:
    url = PUBLIC + "/webhooks/twilio/voice?reminder_id=404"
    params = {"CallSid": "CA1", "CallStatus": "in-progress", "AnsweredBy": "human"}
    body, headers = twilio_form(url, params)
    # Signed, but no voice reminder 404 exists: the call ends at once.
    response = client.post("/webhooks/twilio/voice?reminder_id=404", content=body, headers=headers)
    assert response.status_code == 200 and "<Hangup />" in response.text
    assert response.headers["content-type"].startswith("text/xml")
    # The signature covers the reminder id in the URL: another id is refused.
    tampered = client.post("/webhooks/twilio/voice?reminder_id=7", content=body, headers=headers)
    assert tampered.status_code == 403
    unsigned = client.post(
        "/webhooks/twilio/voice?reminder_id=404",
        content=body,
        headers={"Content-Type": headers["Content-Type"]},
    )
    assert unsigned.status_code == 401
    body, headers = twilio_form(PUBLIC + "/webhooks/twilio/voice", params)
    no_id = client.post("/webhooks/twilio/voice", content=body, headers=headers)
    assert no_id.status_code == 400 and "reminder_id" in no_id.json()["error"]
    assert inbox(engine) == []


def test_twilio_call_status_callbacks_are_stored_by_call(
    client: TestClient, engine: Engine
) -> None:
    params = {"CallSid": "CA7", "CallStatus": "no-answer", "To": "+4915112345678"}
    body, headers = twilio_form(PUBLIC + "/webhooks/twilio/status", params)
    assert client.post("/webhooks/twilio/status", content=body, headers=headers).status_code == 200
    body, headers = twilio_form(PUBLIC + "/webhooks/twilio/status", {"CallSid": "CA8"})
    assert client.post("/webhooks/twilio/status", content=body, headers=headers).status_code == 400
    assert inbox(engine) == [("twilio", "CA7:no-answer", "call_no-answer")]

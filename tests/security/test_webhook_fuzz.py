"""Hostile requests against every webhook endpoint: 4xx and nothing stored; replays stored once.

Requests go through the real Starlette app (TestClient) into a real inbox on SQLite and
PostgreSQL, signed the way the providers sign: Twilio's RequestValidator, SendGrid's ECDSA
P-256 (verified by sendgrid.helpers.eventwebhook), Stripe's HMAC-SHA256 ``t=,v1=`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from dunning.config import reload_settings
from dunning.db import session_scope
from dunning.db.models import WebhookInbox
from dunning.webhooks import create_app
from tests.tracking_support import sendgrid_headers, sendgrid_keys, twilio_form

PUBLIC = "https://hooks.example.com"
TOKEN = "fuzz-twilio-auth-token-0123456789"
STRIPE_SECRET = "whsec_fuzz_0123456789abcdef"
LIMIT = 4096
SG_KEY, SG_PUBLIC = sendgrid_keys()
OTHER_SG_KEY, _ = sendgrid_keys()
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

Request = tuple[str, bytes, dict[str, str]]


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    # Configured the way an operator does: through the DUNNING_* variables WebhookSettings reads.
    for name, value in {
        "DUNNING_WEBHOOK_PUBLIC_URL": PUBLIC,
        "DUNNING_TWILIO_AUTH_TOKEN": TOKEN,
        "DUNNING_SENDGRID_WEBHOOK_PUBLIC_KEY": SG_PUBLIC,
        "DUNNING_STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "DUNNING_WEBHOOK_MAX_BODY_BYTES": str(LIMIT),
    }.items():
        monkeypatch.setenv(name, value)
        reload_settings()
    with TestClient(
        create_app(engine=engine), base_url="http://127.0.0.1:8000", raise_server_exceptions=True
    ) as c:
        yield c


def stored(engine: Engine) -> int:
    with session_scope(engine) as s:
        return int(s.scalar(select(func.count(WebhookInbox.id))) or 0)


def stripe_header(body: bytes, secret: str = STRIPE_SECRET, ts: int | None = None) -> str:
    # Computed here, not with dunning's helper, so a wrong verifier cannot agree with itself.
    t = int(time.time()) if ts is None else ts
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={sig}"


def sendgrid(event_id: str = "sg-1", ts: int | None = None, key: Any = SG_KEY) -> Request:
    body = json.dumps(
        [
            {
                "event": "delivered",
                "sg_event_id": event_id,
                "email": "a@example.com",
                "timestamp": 1700000000,
                "reminder_id": "1",
            }
        ]
    ).encode()
    return "/webhooks/sendgrid/events", body, sendgrid_headers(key, body, timestamp=ts)


def twilio_status(sid: str = "SM1", token: str = TOKEN) -> Request:
    path = "/webhooks/twilio/status"
    body, headers = twilio_form(
        PUBLIC + path,
        {"MessageSid": sid, "MessageStatus": "delivered", "To": "+14155550100"},
        token,
    )
    return path, body, headers


def twilio_inbound(sid: str = "SMin1", token: str = TOKEN) -> Request:
    path = "/webhooks/twilio/inbound"
    body, headers = twilio_form(
        PUBLIC + path, {"MessageSid": sid, "From": "+14155550100", "Body": "STOP"}, token
    )
    return path, body, headers


def stripe(event_id: str = "evt_1", secret: str = STRIPE_SECRET, ts: int | None = None) -> Request:
    body = json.dumps(
        {"id": event_id, "type": "payment_intent.succeeded", "data": {"object": {"amount": 1000}}}
    ).encode()
    return (
        "/webhooks/stripe",
        body,
        {"Content-Type": "application/json", "Stripe-Signature": stripe_header(body, secret, ts)},
    )


VALID: dict[str, Callable[[], Request]] = {
    "sendgrid": sendgrid,
    "twilio_status": twilio_status,
    "twilio_inbound": twilio_inbound,
    "stripe": stripe,
}
SIGNATURE_HEADER = {
    "sendgrid": "X-Twilio-Email-Event-Webhook-Signature",
    "twilio_status": "X-Twilio-Signature",
    "twilio_inbound": "X-Twilio-Signature",
    "stripe": "Stripe-Signature",
}
STALE = int(time.time()) - 3600


def _forged(kind: str) -> Request:
    return {
        "sendgrid": lambda: sendgrid(key=OTHER_SG_KEY),
        "twilio_status": lambda: twilio_status(token="not-the-token"),
        "twilio_inbound": lambda: twilio_inbound(token="not-the-token"),
        "stripe": lambda: stripe(secret="whsec_forged"),
    }[kind]()


def _tampered(kind: str) -> Request:
    path, body, headers = VALID[kind]()
    swap = {
        "sendgrid": (b"delivered", b"bounce"),
        "twilio_status": (b"delivered", b"failed"),
        "twilio_inbound": (b"STOP", b"START"),
        "stripe": (b"1000", b"9999"),
    }[kind]
    return path, body.replace(*swap), headers


def _oversized(kind: str) -> Request:
    # Correctly signed, but larger than DUNNING_WEBHOOK_MAX_BODY_BYTES.
    pad = "x" * (LIMIT + 10)
    if kind == "sendgrid":
        body = json.dumps([{"event": "open", "sg_event_id": "big", "pad": pad}]).encode()
        return "/webhooks/sendgrid/events", body, sendgrid_headers(SG_KEY, body)
    if kind == "stripe":
        body = json.dumps({"id": "evt_big", "type": "x", "pad": pad}).encode()
        return (
            "/webhooks/stripe",
            body,
            {"Content-Type": "application/json", "Stripe-Signature": stripe_header(body)},
        )
    path = "/webhooks/twilio/" + ("status" if kind == "twilio_status" else "inbound")
    body, headers = twilio_form(
        PUBLIC + path, {"MessageSid": "SMbig", "MessageStatus": "sent", "Body": pad}, TOKEN
    )
    return path, body, headers


def _wrong_type(kind: str) -> Request:
    path, body, headers = VALID[kind]()
    wrong = "text/plain" if "twilio" not in kind else "application/json"
    return path, body, {**headers, "Content-Type": wrong}


def _unsigned(kind: str) -> Request:
    path, body, headers = VALID[kind]()
    return path, body, {k: v for k, v in headers.items() if k != SIGNATURE_HEADER[kind]}


def _malformed(kind: str) -> Request:
    # Signed correctly, but the body is not what the provider sends.
    if kind == "sendgrid":
        body = b'{"not": "a list"}'
        return "/webhooks/sendgrid/events", body, sendgrid_headers(SG_KEY, body)
    if kind == "stripe":
        body = b"[1, 2, 3]"
        return (
            "/webhooks/stripe",
            body,
            {"Content-Type": "application/json", "Stripe-Signature": stripe_header(body)},
        )
    path = "/webhooks/twilio/" + ("status" if kind == "twilio_status" else "inbound")
    body, headers = twilio_form(PUBLIC + path, {"Body": "no sid"}, TOKEN)
    return path, body, headers


ATTACKS: dict[str, tuple[Callable[[str], Request], set[int]]] = {
    "forged": (_forged, {403}),
    "tampered": (_tampered, {403}),
    "unsigned": (_unsigned, {401}),
    "oversized": (_oversized, {413}),
    "wrong_content_type": (_wrong_type, {415}),
    "malformed_body": (_malformed, {400}),
}


def post(client: TestClient, request: Request) -> int:
    path, body, headers = request
    return client.post(path, content=body, headers=headers).status_code


@pytest.mark.parametrize("kind", list(VALID))
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_hostile_requests_are_refused_and_store_nothing(
    client: TestClient, engine: Engine, kind: str, attack: str
) -> None:
    build, statuses = ATTACKS[attack]
    assert post(client, build(kind)) in statuses
    assert stored(engine) == 0


@pytest.mark.parametrize("kind", ["sendgrid", "stripe"])
def test_stale_timestamps_are_refused(client: TestClient, engine: Engine, kind: str) -> None:
    request = sendgrid(ts=STALE) if kind == "sendgrid" else stripe(ts=STALE)
    assert post(client, request) == 403
    future = int(time.time()) + 3600
    request = sendgrid(ts=future) if kind == "sendgrid" else stripe(ts=future)
    assert post(client, request) == 403
    assert stored(engine) == 0


@pytest.mark.parametrize("kind", list(VALID))
def test_valid_replays_are_stored_once(client: TestClient, engine: Engine, kind: str) -> None:
    request = VALID[kind]()
    for _ in range(3):
        assert post(client, request) == 200
    assert stored(engine) == 1


def test_wrong_methods_and_paths_store_nothing(client: TestClient, engine: Engine) -> None:
    for path in ("/webhooks/sendgrid/events", "/webhooks/twilio/status", "/webhooks/stripe"):
        assert client.get(path).status_code == 405
    assert client.post("/webhooks/other", content=b"{}").status_code == 404
    assert stored(engine) == 0


# Header values as they can travel: printable latin-1 bytes.
_HEADER_TEXT = st.text(
    st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f"), max_size=120
)
_HEADER_VALUES = st.one_of(
    _HEADER_TEXT,
    st.sampled_from(
        [
            "",
            "t=1,v1=00",
            "t=abc",
            "v1=",
            "=",
            "AAAA",
            "t=99999999999,v1=" + "0" * 64,
            "MEUCIQ==",
            "not base64!!",
        ]
    ),
)
_BODIES = st.one_of(
    st.binary(max_size=600),
    st.text(max_size=300).map(str.encode),
    st.sampled_from(
        [
            b"[]",
            b"{}",
            b"null",
            b'[{"sg_event_id": 1}]',
            b"\xff\xfe\x00",
            b'{"id": "evt", "type": "x"}',
            b"MessageSid=SM1&MessageStatus=sent",
            b"a=%ZZ&&&=",
            json.dumps([{"e": "x" * 5000}]).encode(),
        ]
    ),
)


@FUZZ
@given(
    kind=st.sampled_from(list(VALID)),
    body=_BODIES,
    signature=_HEADER_VALUES,
    timestamp=_HEADER_VALUES,
    content_type=st.sampled_from(
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "application/json; charset=utf-8",
            "text/xml",
            "",
        ]
    ),
)
def test_random_requests_are_answered_4xx_and_store_nothing(
    client: TestClient,
    engine: Engine,
    kind: str,
    body: bytes,
    signature: str,
    timestamp: str,
    content_type: str,
) -> None:
    path = VALID[kind]()[0]
    headers = {
        "Content-Type": content_type.encode(),
        SIGNATURE_HEADER[kind]: signature.encode("latin-1"),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp.encode("latin-1"),
    }
    status = client.post(path, content=body, headers=headers).status_code
    assert 400 <= status < 500
    assert stored(engine) == 0


@FUZZ
@given(
    kind=st.sampled_from(list(VALID)),
    ids=st.lists(st.text("abcdefXYZ0123456789_-", min_size=1, max_size=12), min_size=1, max_size=4),
    repeats=st.integers(min_value=1, max_value=3),
)
def test_valid_events_in_any_order_are_stored_exactly_once(
    client: TestClient, engine: Engine, kind: str, ids: list[str], repeats: int
) -> None:
    prefix = f"{kind}-{time.monotonic_ns()}-"  # examples share one database
    before = stored(engine)
    builders: dict[str, Callable[[str], Request]] = {
        "sendgrid": sendgrid,
        "twilio_status": twilio_status,
        "twilio_inbound": twilio_inbound,
        "stripe": stripe,
    }
    for _ in range(repeats):
        for event_id in ids:
            assert post(client, builders[kind](prefix + event_id)) == 200
    assert stored(engine) - before == len(set(ids))


def test_form_bodies_with_encoded_tricks_verify_only_as_signed(
    client: TestClient, engine: Engine
) -> None:
    path = "/webhooks/twilio/inbound"
    params = {"MessageSid": "SMtrick", "From": "+14155550100", "Body": "a&b=c%26d\u00e9"}
    body, headers = twilio_form(PUBLIC + path, params, TOKEN)
    # The same parameters in another encoding are the same request: accepted once.
    assert post(client, (path, urlencode(params).encode(), headers)) == 200
    assert post(client, (path, body + b"&Extra=1", headers)) == 403
    assert stored(engine) == 1

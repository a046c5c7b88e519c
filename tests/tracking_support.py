"""Seed data and request signing shared by the webhook and tracking tests."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine
from twilio.request_validator import RequestValidator

from dunning.db import session_scope
from dunning.db.models import Customer, Invoice, Reminder

TWILIO_TOKEN = "twilio-test-auth-token"
STRIPE_SECRET = "whsec_test_secret"
SENT_AT = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def seed(
    engine: Engine,
    *,
    reminders: list[tuple[str, str, str | None]] | None = None,
    amount: str = "100.00",
) -> dict[str, int]:
    """Customer C1 (email + phone), invoice INV-1 and reminders (stage, channel, status|None).

    A reminder with status ``sent`` gets a provider message id ``<channel>-<stage>`` and
    SENT_AT. Returns the reminder ids by "<stage>/<channel>" and the invoice id.
    """
    ids: dict[str, int] = {}
    with session_scope(engine) as s:
        s.add(
            Customer(
                customer_id="C1",
                name="Jane Doe",
                email="jane@example.com",
                phone="+4915112345678",
                country="DE",
                timezone="Europe/Berlin",
                locale="de_DE",
                sms_consent=True,
            )
        )
        s.flush()
        inv = Invoice(
            invoice_number="INV-1",
            customer_id="C1",
            currency="EUR",
            amount=Decimal(amount),
            issued_on=dt.date(2026, 2, 1),
            due_on=dt.date(2026, 3, 1),
        )
        s.add(inv)
        s.flush()
        ids["invoice"] = inv.id
        for stage, channel, status in reminders or []:
            r = Reminder(
                invoice_id=inv.id,
                customer_id="C1",
                stage=stage,
                channel=channel,
                segment="good",
                template=f"{stage}/{channel}",
                status=status or "planned",
            )
            if status == "sent":
                r.provider_message_id = f"{channel}-{stage}"
                r.sent_at = SENT_AT
                r.provider = "sendgrid" if channel == "email" else "twilio"
            s.add(r)
            s.flush()
            ids[f"{stage}/{channel}"] = r.id
    return ids


def sendgrid_keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A fresh P-256 key and its public half as SendGrid shows it (base64 DER, no PEM lines)."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, base64.b64encode(der).decode()


def sendgrid_headers(
    key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """Headers of a SendGrid Signed Event Webhook POST of ``body``."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    sig = key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": ts,
    }


def sg_event(
    event: str, event_id: str, reminder_id: int | None, **extra: object
) -> dict[str, object]:
    """One SendGrid event as the Event Webhook posts it (custom args at top level)."""
    ev: dict[str, object] = {
        "event": event,
        "sg_event_id": event_id,
        "email": "jane@example.com",
        "timestamp": int(SENT_AT.timestamp()) + 60,
        "sg_message_id": "email-x.filter0001",
    }
    if reminder_id is not None:
        ev["reminder_id"] = str(reminder_id)
    ev.update(extra)
    return ev


def twilio_form(
    url: str, params: dict[str, str], token: str = TWILIO_TOKEN
) -> tuple[bytes, dict[str, str]]:
    """A form body and headers signed the way Twilio signs a callback to ``url``."""
    sig = RequestValidator(token).compute_signature(url, params)
    return urlencode(params).encode(), {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sig,
    }


def stripe_signature(secret: str, timestamp: int, body: bytes) -> str:
    """Stripe's v1 signature written out from its documentation, independently of the
    receiver (which verifies with the official ``stripe`` package): HMAC-SHA256 of
    "{timestamp}.{body}" keyed with the endpoint secret, hex encoded."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def stripe_request(
    event: dict[str, object], secret: str = STRIPE_SECRET, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """A Stripe event body and its Stripe-Signature header."""
    body = json.dumps(event).encode()
    ts = timestamp if timestamp is not None else int(time.time())
    return body, {
        "Content-Type": "application/json",
        "Stripe-Signature": f"t={ts},v1={stripe_signature(secret, ts, body)}",
    }


def stripe_event(event_id: str, kind: str, obj: dict[str, object]) -> dict[str, object]:
    """A Stripe event envelope around ``obj``."""
    return {
        "id": event_id,
        "type": kind,
        "created": int(SENT_AT.timestamp()) + 3600,
        "data": {"object": obj},
    }


@contextlib.contextmanager
def running_app(app: object) -> Iterator[str]:
    """``app`` served by a real uvicorn on a free 127.0.0.1 port; yields its base URL and stops
    it afterwards (start bounded to 20 s)."""
    import threading

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,  # type: ignore[arg-type]
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "app failed to start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)

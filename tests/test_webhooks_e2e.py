"""End to end: the fake providers' signed callbacks, over real HTTP, into the ledger."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Mail
from sqlalchemy import Engine, select
from twilio.rest import Client

from dunning.channels.twilio import BaseUrlHttpClient
from dunning.config import WebhookSettings
from dunning.config.channels import ChannelSettings
from dunning.db import session_scope
from dunning.db.models import Customer, Invoice, Reminder, WebhookInbox
from dunning.devtools.fakes.server import run_fakes
from dunning.devtools.fakes.twilio import FALLBACK_FROM
from dunning.tracking import apply_inbox
from dunning.webhooks import create_app

PHONE = "+4915112345678"


@pytest.fixture
def receiver_url() -> Iterator[str]:
    """A free 127.0.0.1 address for the receiver (started inside the test)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    yield f"http://127.0.0.1:{port}"


def serve(app: object, url: str) -> tuple[uvicorn.Server, threading.Thread]:
    port = int(url.rsplit(":", 1)[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "receiver failed to start"
        time.sleep(0.01)
    return server, thread


def wait_for_inbox(engine: Engine, event_ids: set[str]) -> None:
    """Until the inbox holds ``event_ids`` (callbacks are asynchronous); fails after 20 s."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with session_scope(engine) as s:
            if event_ids <= set(s.scalars(select(WebhookInbox.event_id))):
                return
        time.sleep(0.05)
    pytest.fail(f"callbacks never arrived: {event_ids}")


def seed_one(engine: Engine) -> tuple[int, int, int]:
    with session_scope(engine) as s:
        s.add(
            Customer(
                customer_id="C1",
                email="jane@example.com",
                phone=PHONE,
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
            amount=Decimal("50.00"),
            issued_on=dt.date(2026, 2, 1),
            due_on=dt.date(2026, 3, 1),
        )
        s.add(inv)
        s.flush()
        rows = [
            Reminder(
                invoice_id=inv.id, customer_id="C1", stage=stage, channel=channel, status="planned"
            )
            for stage, channel in (("due", "email"), ("due", "sms"), ("overdue_1", "sms"))
        ]
        s.add_all(rows)
        s.flush()
        return rows[0].id, rows[1].id, rows[2].id


def mark_sent(engine: Engine, rid: int, message_id: str) -> None:
    with session_scope(engine) as s:
        r = s.get_one(Reminder, rid)
        r.status, r.provider_message_id, r.sent_at = "sent", message_id, dt.datetime.now(dt.UTC)


def test_fake_callbacks_flow_into_the_ledger(engine: Engine, receiver_url: str) -> None:
    email_id, sms_id, planned_sms_id = seed_one(engine)
    with run_fakes(
        seed=7,
        sendgrid_event_url=receiver_url + "/webhooks/sendgrid/events",
        twilio_inbound_url=receiver_url + "/webhooks/twilio/inbound",
        emit_opens=True,
    ) as fakes:
        settings = WebhookSettings(
            webhook_public_url=receiver_url, sendgrid_webhook_public_key=fakes.sendgrid_public_key
        )
        twilio = ChannelSettings(
            twilio_account_sid=fakes.twilio_account_sid,
            twilio_auth_token=SecretStr(fakes.twilio_auth_token),
        )
        server, thread = serve(create_app(settings, engine, twilio), receiver_url)
        try:
            twilio = Client(
                fakes.twilio_account_sid,
                fakes.twilio_auth_token,
                http_client=BaseUrlHttpClient(fakes.base_url),
            )
            sms = twilio.messages.create(
                to=PHONE,
                from_=FALLBACK_FROM,
                body="Invoice INV-1 due",
                status_callback=receiver_url + "/webhooks/twilio/status",
            )
            assert sms.sid is not None
            mark_sent(engine, sms_id, sms.sid)
            mail = Mail(
                from_email="billing@example.com",
                to_emails="jane@example.com",
                subject="INV-1",
                plain_text_content="Please pay INV-1",
            )
            mail.custom_arg = CustomArg("reminder_id", str(email_id))
            sent = SendGridAPIClient(fakes.sendgrid_api_key, host=fakes.base_url).send(mail)
            mark_sent(engine, email_id, sent.headers["X-Message-Id"])
            wait_for_inbox(engine, {f"{sms.sid}:delivered"})
            status = fakes.send_inbound_sms(
                PHONE, FALLBACK_FROM, "STOP", url=receiver_url + "/webhooks/twilio/inbound"
            )
            assert status == 200
            # A forged inbound request (wrong token) is refused and stores nothing.
            forged = httpx.post(
                receiver_url + "/webhooks/twilio/inbound",
                data={"MessageSid": "SMforged", "From": PHONE, "Body": "START"},
                headers={"X-Twilio-Signature": "bm90LXNpZ25lZA=="},
            )
            assert forged.status_code == 403
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with session_scope(engine) as s:
                    kinds = set(s.scalars(select(WebhookInbox.event_type)))
                if {"click", "inbound"} <= kinds:
                    break
                time.sleep(0.05)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    first = apply_inbox(engine)
    assert first.counts["opt_out_sms"] == 1 and first.counts["error"] == 0
    with session_scope(engine) as s:
        email = s.get_one(Reminder, email_id)
        sms_row = s.get_one(Reminder, sms_id)
        assert (email.status, email.delivered_at is not None) == ("clicked", True)
        assert sms_row.status == "replied" and sms_row.delivered_at is not None
        assert s.get_one(Reminder, planned_sms_id).status == "skipped"
        assert s.get_one(Customer, "C1").sms_opt_out is True
        assert "SMforged" not in set(s.scalars(select(WebhookInbox.event_id)))
    # Replaying: nothing pending, nothing changes.
    assert apply_inbox(engine).as_dict() == {}

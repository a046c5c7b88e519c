"""Polling Twilio through the official SDK against a Messages API on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from tracking_support import SENT_AT, seed

from dunning.channels.twilio_config import TwilioConfig
from dunning.config import reload_settings
from dunning.db import session_scope
from dunning.db.models import Customer, Reminder
from dunning.errors import ConfigError
from dunning.tracking.poll import poll_twilio, stale_sms, twilio_client

STATUSES = {
    "sms-due": ("delivered", None),
    "sms-overdue_1": ("undelivered", 30003),
    "sms-overdue_2": ("sent", None),
}


class MessagesApi(BaseHTTPRequestHandler):
    """GET /2010-04-01/Accounts/AC../Messages/<sid>.json, as Twilio answers it."""

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        sid = self.path.rsplit("/", 1)[-1].removesuffix(".json")
        if sid not in STATUSES:
            self.send_response(404)
            body = json.dumps({"code": 20404, "message": "not found", "status": 404}).encode()
        else:
            status, code = STATUSES[sid]
            self.send_response(200)
            body = json.dumps(
                {
                    "sid": sid,
                    "status": status,
                    "error_code": code,
                    "date_updated": "Mon, 02 Mar 2026 09:05:00 +0000",
                }
            ).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), MessagesApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_poll_applies_final_statuses_of_stale_sms(engine: Engine, api_url: str) -> None:
    ids = seed(
        engine,
        reminders=[
            ("due", "sms", "sent"),
            ("overdue_1", "sms", "sent"),
            ("overdue_2", "sms", "sent"),
            ("final_notice", "sms", "sent"),
            ("due", "email", "sent"),
        ],
    )
    config = TwilioConfig(
        account_sid="AC" + "0" * 32, auth_token=SecretStr("token"), base_url=api_url
    )
    now = SENT_AT + dt.timedelta(hours=1)
    # A message younger than the poll age is left alone.
    assert stale_sms(engine, dt.timedelta(hours=2), now) == []
    summary = poll_twilio(engine, twilio_client(config), dt.timedelta(minutes=30), now)
    assert summary.counts["polled"] == 3 and summary.counts["poll_error"] == 1  # unknown sid
    with session_scope(engine) as s:
        got = {
            k: (s.get_one(Reminder, ids[k]).status, s.get_one(Reminder, ids[k]).error_code)
            for k in ("due/sms", "overdue_1/sms", "overdue_2/sms")
        }
        delivered_at = s.get_one(Reminder, ids["due/sms"]).delivered_at
        assert s.get_one(Customer, "C1").sms_opt_out is False
    assert got == {
        "due/sms": ("delivered", None),
        "overdue_1/sms": ("undelivered", "30003"),
        "overdue_2/sms": ("sent", None),
    }
    assert delivered_at == dt.datetime(2026, 3, 2, 9, 5, tzinfo=dt.UTC)
    # Final ones drop out of the next poll; the still-"sent" one stays.
    assert set(stale_sms(engine, dt.timedelta(minutes=30), now)) == {
        "sms-overdue_2",
        "sms-final_notice",
    }


def test_poll_without_credentials_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="polling Twilio .* DUNNING_TWILIO_ACCOUNT_SID"):
        twilio_client()


def test_poll_reads_the_same_twilio_account_as_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    # Twilio's conventional names, which sending always accepted, now serve the poller too.
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "conventional-token")
    reload_settings()
    client = twilio_client()
    assert client.username == "AC" + "1" * 32 and client.password == "conventional-token"

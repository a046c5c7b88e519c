"""``dunning webhooks serve|apply``, ``dunning replies`` and ``dunning metrics``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine, select
from tracking_support import STRIPE_SECRET, seed, stripe_event, stripe_request
from typer.testing import CliRunner, Result

from dunning.cli import _load_commands, app
from dunning.db import get_engine, session_scope, upgrade
from dunning.db.models import WebhookInbox
from dunning.webhooks import store_records
from dunning.webhooks.verify import InboxRecord

runner = CliRunner()
DUNNING = Path(sys.executable).parent / "dunning"


def cli(*args: str) -> Result:
    _load_commands()
    return runner.invoke(app, list(args))


def test_apply_then_replies_and_metrics_as_json(engine: Engine) -> None:
    seed(engine, reminders=[("due", "sms", "sent")])
    store_records(
        engine,
        [
            InboxRecord(
                "twilio",
                "SM1",
                "inbound",
                json.dumps({"MessageSid": "SM1", "From": "+4915112345678", "Body": "PAID"}),
            )
        ],
    )
    applied = cli("webhooks", "apply", "--json")
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.stdout) == {"paid_reply": 1, "reply": 1}
    replies = json.loads(cli("replies", "--json").stdout)
    assert [(r["from"], r["keyword"], r["invoice_number"]) for r in replies] == [
        ("+49*******5678", "paid", "INV-1")
    ]
    assert "4915112345678" not in cli("replies").stdout
    rows = json.loads(cli("metrics", "--by", "channel", "--json").stdout)
    assert [(r["channel"], r["sent"], r["reply_rate"]) for r in rows] == [("sms", 1, 1.0)]


def test_metrics_input_errors_name_the_option(engine: Engine) -> None:
    bad_by = cli("metrics", "--by", "colour")
    assert bad_by.exit_code == 1 and "--by" in bad_by.output and "stage" in bad_by.output
    bad_since = cli("metrics", "--since", "yesterday")
    assert bad_since.exit_code == 1 and "YYYY-MM-DD" in bad_since.output


def test_serve_receives_a_signed_stripe_event(tmp_path: Path) -> None:
    # CLI wiring only (the inbox itself is tested on every backend): one SQLite database.
    db_url = f"sqlite:///{tmp_path / 'serve.db'}"
    upgrade(db_url)
    engine = get_engine(db_url)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {
        **os.environ,
        "DUNNING_DATABASE_URL": db_url,
        "DUNNING_STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
    }
    proc = subprocess.Popen(
        [str(DUNNING), "webhooks", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "receiver did not start"
                time.sleep(0.1)
        body, headers = stripe_request(stripe_event("evt_cli", "invoice.paid", {}))
        assert (
            httpx.post(base + "/webhooks/stripe", content=body, headers=headers).status_code == 200
        )
        # SendGrid has no key configured: 503 so SendGrid retries later.
        assert (
            httpx.post(
                base + "/webhooks/sendgrid/events",
                content=b"[]",
                headers={"Content-Type": "application/json"},
            ).status_code
            == 503
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    with session_scope(engine) as s:
        assert list(s.scalars(select(WebhookInbox.event_id))) == ["evt_cli"]

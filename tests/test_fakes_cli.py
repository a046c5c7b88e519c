"""``dunning fakes ...`` commands against a real ``dunning fakes serve`` process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from fakes_support import Receiver, receiver, sendgrid_client, twilio_client
from twilio.request_validator import RequestValidator
from typer.testing import CliRunner

from dunning.cli import _load_commands
from dunning.cli.app import app
from dunning.devtools.fakes import bind

DUNNING = str(Path(sys.executable).with_name("dunning"))
runner = CliRunner()
_load_commands()
BUSY = "+4915100000032"


class Served:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.base_url = env["DUNNING_TWILIO_BASE_URL"]
        self.twilio_account_sid = env["DUNNING_TWILIO_ACCOUNT_SID"]
        self.twilio_auth_token = env["DUNNING_TWILIO_AUTH_TOKEN"]
        self.sendgrid_api_key = env["DUNNING_SENDGRID_API_KEY"]


@pytest.fixture(scope="module")
def hooks() -> Iterator[Receiver]:
    with receiver() as rec:
        yield rec


@pytest.fixture(scope="module")
def served(hooks: Receiver) -> Iterator[Served]:
    """One ``dunning fakes serve`` process for the module (starting the CLI takes seconds)."""
    proc = subprocess.Popen(
        [
            DUNNING,
            "fakes",
            "serve",
            "--port",
            "0",
            "--json",
            "--seed",
            "4",
            "--webhook-url",
            hooks.base_url,
            "--call-answer",
            BUSY + "=busy",
            "--call-digits",
            "+4915100000031=9",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line, proc.stderr.read() if proc.stderr else "no output"
        yield Served(json.loads(line))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)


def test_serve_prints_env_and_serves_both_providers(served: Served, hooks: Receiver) -> None:
    assert runner.invoke(app, ["fakes", "reset", "--fakes-url", served.base_url]).exit_code == 0
    assert served.env["DUNNING_SENDGRID_BASE_URL"] == served.base_url
    assert served.env["DUNNING_TWILIO_STATUS_CALLBACK_URL"] == hooks.url("/webhooks/twilio/status")
    sms = twilio_client(served).messages.create(to="+14155550100", from_="+15005550006", body="x")
    assert sms.status == "queued"
    email = sendgrid_client(served).client.mail.send.post(
        request_body={
            "personalizations": [{"to": [{"email": "jane@example.com"}]}],
            "from": {"email": "billing@example.com"},
            "subject": "s",
            "content": [{"type": "text/plain", "value": "v"}],
        }
    )
    assert email.status_code == 202
    processed, delivered = hooks.take(2)
    assert processed.path == delivered.path == "/webhooks/sendgrid/events"
    result = runner.invoke(app, ["fakes", "messages", "--fakes-url", served.base_url])
    assert result.exit_code == 0
    counts = json.loads(result.stdout)["counts"]["by_recipient"]
    assert counts == {"+14155550100": 1, "jane@example.com": 1}
    result = runner.invoke(app, ["fakes", "reset", "--fakes-url", served.base_url])
    assert result.exit_code == 0
    again = runner.invoke(app, ["fakes", "messages", "--fakes-url", served.base_url])
    assert json.loads(again.stdout)["messages"] == []


def test_inbound_command_posts_a_signed_sms(served: Served, hooks: Receiver) -> None:
    result = runner.invoke(
        app,
        [
            "fakes",
            "inbound",
            "--from",
            "+14155550100",
            "--to",
            "+15005550006",
            "--body",
            "STOP",
            "--fakes-url",
            served.base_url,
        ],
    )
    assert result.exit_code == 0, result.output
    hook = hooks.next()
    form = dict(parse_qsl(hook.body.decode(), keep_blank_values=True))
    assert hook.path == "/webhooks/twilio/inbound" and form["Body"] == "STOP"
    assert RequestValidator(served.twilio_auth_token).validate(
        hooks.url(hook.path), form, hook.headers["X-Twilio-Signature"]
    )


def test_bad_knob_exits_nonzero_naming_it() -> None:
    result = runner.invoke(app, ["fakes", "serve", "--error-rate", "1.5"])
    assert result.exit_code == 1
    assert "error_rate" in result.output


def test_busy_port_exits_nonzero_with_a_hint() -> None:
    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        result = runner.invoke(app, ["fakes", "serve", "--port", str(port)])
    finally:
        sock.close()
    assert result.exit_code == 1
    assert f"127.0.0.1:{port}" in result.output and "--port" in result.output


def test_admin_commands_without_fakes_explain_how_to_start_them() -> None:
    result = runner.invoke(app, ["fakes", "messages", "--fakes-url", "http://127.0.0.1:1"])
    assert result.exit_code == 1
    assert "dunning fakes serve" in result.output


def test_listening_socket_disables_nagle() -> None:
    """The fakes' socket has TCP_NODELAY, which accepted connections inherit: without it every
    response waited ~40 ms for the client's delayed ACK, on top of the configured latency."""
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        client = socket.create_connection(sock.getsockname()[:2])
        accepted, _ = sock.accept()
        try:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        finally:
            accepted.close()
            client.close()
    finally:
        sock.close()


def test_serve_takes_call_knobs_and_reports_calls_signed(served: Served, hooks: Receiver) -> None:
    assert served.env["DUNNING_WEBHOOK_PUBLIC_URL"] == hooks.base_url
    call = twilio_client(served).calls.create(
        to=BUSY,
        from_="+15005550006",
        url="http://127.0.0.1:9/never-fetched",
        status_callback=hooks.url("/calls/status"),
    )
    assert call.sid.startswith("CA") and call.status == "queued"
    hook = hooks.next()
    fields = dict(parse_qsl(hook.body.decode()))
    assert (hook.path, fields["CallSid"], fields["CallStatus"]) == (
        "/calls/status",
        call.sid,
        "busy",
    )
    validator = RequestValidator(served.twilio_auth_token)
    assert validator.validate(
        hooks.url("/calls/status"), fields, hook.headers["X-Twilio-Signature"]
    )


@pytest.mark.parametrize("option", ["--call-answer", "--call-digits"])
def test_malformed_call_knobs_exit_naming_the_option(option: str) -> None:
    result = runner.invoke(app, ["fakes", "serve", option, "4915100000031"])
    assert result.exit_code == 1 and option in result.output
    bad = runner.invoke(app, ["fakes", "serve", "--call-answer", "+4915100000031=sometimes"])
    assert bad.exit_code == 1 and "twilio_call_answers" in bad.output

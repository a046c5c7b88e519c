"""Our SDK calls conform to the providers' OpenAPI specs, checked by Stoplight Prism.

Prism runs in mock mode with ``--errors``: a request that violates the spec is answered 4xx/422
with an ``sl-violations`` header instead of a mock. Install once (from /work/main):
    npm install --no-save @stoplight/prism-cli@5
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail
from twilio.base.exceptions import TwilioException

from dunning.channels.sendgrid import SendGridChannel, build_mail
from dunning.channels.twilio import TwilioChannel
from dunning.channels.twilio_voice import TwilioVoiceChannel
from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage

ROOT = Path(__file__).resolve().parent.parent
PRISM = ROOT / "node_modules" / ".bin" / "prism"
SPECS = Path("/work/shared/specs")
SID = "AC" + "b" * 32


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(spec: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [str(PRISM), "mock", "--errors", "-h", "127.0.0.1", "-p", str(port), str(SPECS / spec)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 90  # startup allowance on a busy machine, not an assertion
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prism exited ({proc.returncode}) serving {spec}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    pytest.fail(f"prism did not start serving {spec} within 90 s: {log.read_text()}")


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if not PRISM.exists():
        pytest.fail(
            f"Stoplight Prism is not installed at {PRISM}: run "
            "`npm install --no-save @stoplight/prism-cli@5` in the repository root"
        )
    logs = tmp_path_factory.mktemp("prism")
    procs = []
    urls = {}
    try:
        for name, spec in (
            ("twilio", "twilio_api_v2010_messages.json"),
            ("twilio_calls", "twilio_api_v2010_calls.json"),
            ("sendgrid", "sendgrid_v3_mail_send.json"),
        ):
            proc, url = _start(spec, logs / f"{name}.log")
            procs.append(proc)
            urls[name] = url
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def _email(rid: int) -> OutboundMessage:
    return OutboundMessage(
        reminder_id=rid,
        channel="email",
        to="jane@example.com",
        subject="Invoice INV-1",
        text="Dear Jane, please pay.",
        html="<p>Dear Jane, please pay.</p>",
        headers={
            "List-Unsubscribe": "<mailto:u@acme.example?subject=unsubscribe>, "
            "<https://u.example/1-ab>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        custom_args={"reminder_id": str(rid)},
    )


def _sms(rid: int) -> OutboundMessage:
    return OutboundMessage(
        reminder_id=rid,
        channel="sms",
        to="+4915112345678",
        text="Acme: invoice INV-1 is overdue. Reply STOP to opt out",
    )


@pytest.mark.parametrize("sender", ["from", "messaging_service"])
def test_twilio_messages_create_conforms(prism: dict[str, str], sender: str) -> None:
    kwargs = (
        {"from_number": "+15005550006"}
        if sender == "from"
        else {"messaging_service_sid": "MG" + "c" * 32}
    )
    channel = TwilioChannel(
        ChannelSettings(send_concurrency=1),
        SID,
        SecretStr("token"),
        base_url=prism["twilio"],
        status_callback_url="https://hooks.example/twilio/status",
        **kwargs,
    )  # type: ignore[arg-type]
    result = channel.send_batch([_sms(1)])[0]
    headers = channel.http.thread_headers or {}
    assert "sl-violations" not in {k.lower() for k in headers}, headers
    assert result.ok, result.error
    assert result.provider_message_id and result.provider_message_id.startswith("SM")


@pytest.mark.parametrize("detection", ["DetectMessageEnd", "Enable"])
def test_twilio_calls_create_and_list_conform(prism: dict[str, str], detection: str) -> None:
    settings = ChannelSettings(
        send_concurrency=1,
        voice_machine_detection=detection,
        webhook_public_url="https://hooks.example.com",
    )
    channel = TwilioVoiceChannel(
        settings, SID, SecretStr("token"), "+15005550006", base_url=prism["twilio_calls"]
    )
    call = OutboundMessage(
        reminder_id=3,
        channel="voice",
        to="+4915112345678",
        text="Hello, this is Acme calling about invoice I N V, 1.",
    )
    result = channel.send_batch([call])[0]
    headers = channel.http.thread_headers or {}
    assert "sl-violations" not in {k.lower() for k in headers}, headers
    assert result.ok, result.error
    assert result.provider_message_id and result.provider_message_id.startswith("CA")
    # The list reconciliation asks for: calls to the number since the claim (StartTime>).
    since = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
    try:
        channel._client.calls.list(to="+4915112345678", start_time_after=since, limit=50)
    except TwilioException as exc:
        # Prism's own mock list page breaks the spec's uri format (its generated paths are
        # not URIs) and it reports that as a 500; only request violations concern us.
        problems = json.loads(exc.args[1].text)["validation"]
        assert [p for p in problems if p["location"][0] == "request"] == [], problems
    else:
        headers = channel.http.thread_headers or {}
        assert "sl-violations" not in {k.lower() for k in headers}, headers


def test_sendgrid_mail_send_conforms(prism: dict[str, str]) -> None:
    settings = ChannelSettings(
        email_from="billing@acme.example",
        email_from_name="Acme",
        email_reply_to="help@acme.example",
    )
    client = SendGridAPIClient(api_key="SG.key", host=prism["sendgrid"])
    response = client.send(build_mail(_email(7), settings))
    assert response.status_code == 202
    assert response.headers.get("sl-violations") is None, response.headers.get("sl-violations")
    channel = SendGridChannel(settings, SecretStr("SG.key"), prism["sendgrid"])
    assert [r.ok for r in channel.send_batch([_email(8), _email(9)])] == [True, True]


def test_prism_rejects_a_violating_request(prism: dict[str, str]) -> None:
    # Control: the same SDK call with a malformed sender must be caught by the spec check,
    # so a passing test above means "conforms", not "Prism accepts anything".
    mail = Mail(
        from_email="not-an-email", to_emails="jane@example.com", subject="x", plain_text_content="x"
    )
    body = mail.get()
    body["personalizations"] = []
    with pytest.raises(HTTPError) as info:
        SendGridAPIClient(api_key="SG.key", host=prism["sendgrid"]).send(body)
    assert info.value.status_code in (400, 422)
    violations = info.value.headers.get("sl-violations")
    assert violations and json.loads(violations)

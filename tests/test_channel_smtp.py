"""SMTP channel against a real aiosmtpd server on 127.0.0.1 (no TLS on loopback)."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr

from dunning.channels.smtp import SmtpChannel
from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage
from dunning.devtools.fakes.salesforce_app import self_signed
from dunning.errors import ProviderAuthError

PASSWORD = "smtp-password-never-shown"


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(
        self,
        server: Any,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 mailbox unavailable"
        if address.startswith("busy@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"


def _authenticator(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


def _free_port() -> int:
    # aiosmtpd's readiness probe connects to the configured port, so port 0 cannot be used.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtpd() -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=_free_port(),
        authenticator=_authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


#: As render.unsubscribe_headers writes it: an HMAC token twice, far longer than 78 characters.
TOKEN = "1-" + "a1b2c3d4" * 8
LIST_UNSUBSCRIBE = (
    f"<mailto:unsubscribe@acme.example?subject=unsubscribe%20{TOKEN}>, "
    f"<https://hooks.acme.example/unsubscribe/{TOKEN}>"
)


def message(rid: int, to: str = "jane@example.com") -> OutboundMessage:
    return OutboundMessage(
        reminder_id=rid,
        channel="email",
        to=to,
        subject="Invoice INV-1 overdue",
        text="Dear Jane,\nplease pay.",
        html="<p>Dear Jane,<br>please pay.</p>",
        headers={
            "List-Unsubscribe": LIST_UNSUBSCRIBE,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        custom_args={"reminder_id": str(rid)},
    )


def channel(controller: Controller, password: str = PASSWORD) -> SmtpChannel:
    settings = ChannelSettings(email_from="billing@acme.example", email_from_name="Acme Billing")
    return SmtpChannel(
        settings,
        "127.0.0.1",
        controller.port,
        "billing",
        SecretStr(password),
        starttls=False,
        timeout=5,
    )


def test_delivers_both_parts_and_headers(smtpd: tuple[Controller, Inbox]) -> None:
    controller, inbox = smtpd
    results = channel(controller).send_batch([message(1), message(2, "joe@example.com")])
    assert [r.ok for r in results] == [True, True]
    assert all(r.provider == "smtp" and r.provider_message_id for r in results)
    assert [e.rcpt_tos for e in inbox.envelopes] == [["jane@example.com"], ["joe@example.com"]]
    content = inbox.envelopes[0].content
    assert isinstance(content, bytes)
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    assert parsed["From"] == "Acme Billing <billing@acme.example>"
    assert parsed["Subject"] == "Invoice INV-1 overdue"
    # RFC 2369 headers travel raw: one line, neither folded nor RFC 2047-encoded.
    assert f"\r\nList-Unsubscribe: {LIST_UNSUBSCRIBE}\r\n".encode() in content
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in content
    assert b"=?utf-8?" not in content
    assert parsed["X-Dunning-Reminder-Id"] == "1"
    assert parsed["Message-ID"] == results[0].provider_message_id
    plain = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert plain is not None and "please pay." in plain.get_content()
    assert html is not None and "<br>please pay.</p>" in html.get_content()


def test_refused_recipients_are_classified(smtpd: tuple[Controller, Inbox]) -> None:
    controller, inbox = smtpd
    results = channel(controller).send_batch(
        [message(1, "nobody@example.com"), message(2, "busy@example.com"), message(3)]
    )
    assert [r.error_code for r in results] == ["smtp_550", "smtp_451", None]
    assert results[0].invalid_address and not results[0].transient
    assert results[1].transient
    assert results[2].ok and len(inbox.envelopes) == 1


def test_bad_login_raises_without_the_password(smtpd: tuple[Controller, Inbox]) -> None:
    controller, _ = smtpd
    with pytest.raises(ProviderAuthError) as info:
        channel(controller, password="wrong-password").send_batch([message(1)])
    assert "DUNNING_SMTP_PASSWORD" in str(info.value)
    assert "wrong-password" not in str(info.value)
    assert PASSWORD not in repr(channel(controller))


def test_server_without_login_stops_the_run() -> None:
    inbox = Inbox()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=_free_port(), authenticator=_authenticator
    )  # AUTH only after TLS
    controller.start()
    try:
        with pytest.raises(ProviderAuthError, match="DUNNING_SMTP_STARTTLS"):
            channel(controller).send_batch([message(1)])
    finally:
        controller.stop()


def test_unreachable_server_is_transient() -> None:
    settings = ChannelSettings()
    # Port 9 (discard) on loopback has no listener here: connection refused.
    results = SmtpChannel(settings, "127.0.0.1", 9, starttls=False, timeout=2).send_batch(
        [message(1), message(2)]
    )
    assert [r.error_code for r in results] == ["connection_error", "connection_error"]
    assert all(r.transient for r in results)


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh self-signed cert for 127.0.0.1 and a client trusting it."""
    cert_file, key_file = self_signed(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_tls_modes_deliver(tmp_path: Path, mode: str) -> None:
    server_ctx, client_ctx = _self_signed(tmp_path)
    inbox = Inbox()
    tls = (
        {"tls_context": server_ctx, "require_starttls": True}
        if mode == "starttls"
        else {"ssl_context": server_ctx, "auth_require_tls": False}
    )
    controller = Controller(
        inbox, hostname="127.0.0.1", port=_free_port(), authenticator=_authenticator, **tls
    )  # type: ignore[arg-type]
    controller.start()
    try:
        channel = SmtpChannel(
            ChannelSettings(),
            "127.0.0.1",
            controller.port,
            "billing",
            SecretStr(PASSWORD),
            starttls=mode == "starttls",
            use_ssl=mode == "ssl",
            timeout=5,
            ssl_context=client_ctx,
        )
        results = channel.send_batch([message(1)])
    finally:
        controller.stop()
    assert results[0].ok, results[0].error
    assert [e.rcpt_tos for e in inbox.envelopes] == [["jane@example.com"]]

"""SMTP channel (standard library smtplib) for Gmail/Outlook-style relays, and the MIME
message every email channel that writes RFC 5322 (SMTP, outbox) shares."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import formataddr, formatdate, make_msgid

from pydantic import SecretStr

from dunning.channels.errors import Failure, classify_network, classify_smtp
from dunning.channels.ratelimit import limiter_for
from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage, SendResult
from dunning.errors import ProviderAuthError

#: Headers are written as given up to RFC 5322's 998-character line limit. Python's default
#: policy folds at 78 and RFC 2047-encodes a long List-Unsubscribe, which mailbox providers
#: then cannot read: RFC 2369 header values (URLs in angle brackets) must stay raw.
MIME_POLICY = default_policy.clone(max_line_length=998)


def build_mime(message: OutboundMessage, settings: ChannelSettings) -> EmailMessage:
    """The RFC 5322 message for ``message``: text and HTML alternatives, List-Unsubscribe and
    List-Unsubscribe-Post unfolded and unencoded (``MIME_POLICY``), and the reminder id as
    X-Dunning-Reminder-Id (the SMTP stand-in for custom_args)."""
    mime = EmailMessage(policy=MIME_POLICY)
    mime["From"] = formataddr((settings.email_from_name or "", settings.email_from))
    mime["To"] = message.to
    mime["Subject"] = message.subject or ""
    mime["Date"] = formatdate(localtime=False, usegmt=True)
    domain = settings.email_from.rpartition("@")[2] or None
    mime["Message-ID"] = make_msgid(idstring=f"reminder-{message.reminder_id}", domain=domain)
    if settings.email_reply_to:
        mime["Reply-To"] = settings.email_reply_to
    for name, value in message.headers.items():
        mime[name] = value
    for name, value in message.custom_args.items():
        mime[f"X-Dunning-{name.replace('_', '-').title()}"] = value
    mime.set_content(message.text)
    if message.html:
        mime.add_alternative(message.html, subtype="html")
    return mime


class SmtpChannel:
    """Email over one SMTP connection per batch (smtplib connections are not thread-safe)."""

    name = "email"
    provider = "smtp"

    def __init__(
        self,
        settings: ChannelSettings,
        host: str,
        port: int,
        username: str | None = None,
        password: SecretStr | None = None,
        starttls: bool = True,
        use_ssl: bool = False,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self.host, self.port = host, port
        self.username, self._password = username, password
        self.starttls, self.use_ssl, self.timeout = starttls, use_ssl, timeout
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.bucket = limiter_for("email", settings.email_rate_limit)

    def __repr__(self) -> str:
        return f"SmtpChannel(host={self.host!r}, port={self.port}, username={self.username!r})"

    def _connect(self) -> smtplib.SMTP:
        if self.use_ssl:
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.ssl_context
            )
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.starttls:
                conn.starttls(context=self.ssl_context)
        if self.username and self._password is not None:
            try:
                conn.login(self.username, self._password.get_secret_value())
            except smtplib.SMTPAuthenticationError as exc:
                conn.close()
                raise ProviderAuthError(classify_smtp(exc.smtp_code, "").error) from None
            except smtplib.SMTPNotSupportedError:
                conn.close()
                raise ProviderAuthError(
                    f"the SMTP server {self.host}:{self.port} offers no login on this "
                    "connection: set DUNNING_SMTP_STARTTLS=true (port 587) or "
                    "DUNNING_SMTP_SSL=true (port 465)"
                ) from None
        return conn

    def _send_one(self, conn: smtplib.SMTP, message: OutboundMessage) -> SendResult:
        mime = build_mime(message, self.settings)
        try:
            refused = conn.send_message(mime)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return classify_smtp(code, text.decode(errors="replace")).result(
                message.reminder_id, self.provider
            )
        except smtplib.SMTPResponseException as exc:
            msg = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            return classify_smtp(exc.smtp_code, msg).result(message.reminder_id, self.provider)
        if refused:
            code, text = next(iter(refused.values()))
            return classify_smtp(code, text.decode(errors="replace")).result(
                message.reminder_id, self.provider
            )
        return SendResult(message.reminder_id, True, self.provider, str(mime["Message-ID"]))

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        """One result per message, in order, sent over one connection."""
        results: list[SendResult] = []
        conn: smtplib.SMTP | None = None
        try:
            for message in messages:
                self.bucket.acquire()
                try:
                    if conn is None:
                        conn = self._connect()
                    results.append(self._send_one(conn, message))
                except smtplib.SMTPServerDisconnected as exc:
                    # The connection is gone: report this message and reconnect for the next.
                    results.append(classify_network(exc).result(message.reminder_id, self.provider))
                    conn = None
                except smtplib.SMTPException as exc:
                    # A protocol error (SMTPException is an OSError, so this comes first).
                    failure = Failure("smtp_error", f"SMTP error: {type(exc).__name__}")
                    results.append(failure.result(message.reminder_id, self.provider))
                    conn = None
                except OSError as exc:
                    results.append(classify_network(exc).result(message.reminder_id, self.provider))
                    conn = None
        finally:
            if conn is not None:
                try:
                    conn.quit()
                except (OSError, smtplib.SMTPException):
                    conn.close()
        return results

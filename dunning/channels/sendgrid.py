"""SendGrid email channel through the official ``sendgrid`` SDK (v3 Mail Send).

Reminders that share a template (same ``template_key``: stage, channel, language) go out as
one Mail Send request with up to 1,000 personalizations: the content is two substitution tags
and each personalization carries its recipient's rendered text and HTML, subject, headers and
custom_args (the reminder id). A request SendGrid rejects as a whole (400/413) is split in
halves until the bad message stands alone, so one bad address cannot block the others.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from pydantic import SecretStr
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    CustomArg,
    From,
    Header,
    HtmlContent,
    Mail,
    Personalization,
    PlainTextContent,
    ReplyTo,
    Subject,
    Substitution,
    To,
)

from dunning.channels.errors import Failure, classify_network, classify_sendgrid
from dunning.channels.ratelimit import block_size, limiter_for, paced_rate, send_concurrently
from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage, SendResult
from dunning.errors import ProviderAuthError
from dunning.masking import scrub

#: SendGrid's ceiling of personalizations per Mail Send request.
MAX_PERSONALIZATIONS = 1000
#: SendGrid refuses a personalization whose substitutions exceed 10,000 bytes in total.
SUBSTITUTION_BYTES = 10_000
TEXT_TAG, HTML_TAG = "%dunning_text%", "%dunning_html%"
#: Statuses by which SendGrid rejects a whole request because of its content.
_SPLITTABLE = {"http_400", "http_413"}


def build_mail(message: OutboundMessage, settings: ChannelSettings) -> Mail:
    """The SendGrid Mail for ``message``: both parts, headers and custom_args."""
    mail = Mail(
        from_email=From(settings.email_from, settings.email_from_name),
        to_emails=To(message.to),
        subject=Subject(message.subject or ""),
        plain_text_content=PlainTextContent(message.text),
        html_content=HtmlContent(message.html) if message.html else None,
    )
    if settings.email_reply_to:
        mail.reply_to = ReplyTo(settings.email_reply_to)
    for name, value in message.headers.items():
        mail.header = Header(name, value)
    for name, value in message.custom_args.items():
        # On the personalization: SendGrid's OpenAPI spec types the message-level custom_args
        # as a string, and both levels reach the Event Webhook the same way.
        mail.custom_arg = CustomArg(name, value, p=0)
    return mail


def bulk_key(message: OutboundMessage) -> tuple[str, str, bool] | None:
    """The template a message shares with others (key, locale, has html), or None when it
    must go alone: no template identity, or a body too large for substitutions."""
    if not message.template_key:
        return None
    parts = [message.text, message.html or ""]
    if any(TEXT_TAG in p or HTML_TAG in p for p in parts):
        return None  # a body quoting our tags would be substituted into itself
    if sum(len(p.encode()) + len(TEXT_TAG) for p in parts) > SUBSTITUTION_BYTES:
        return None
    return (message.template_key, message.locale, message.html is not None)


def build_bulk_mail(messages: Sequence[OutboundMessage], settings: ChannelSettings) -> Mail:
    """One Mail for messages of one template: a personalization per message."""
    mail = Mail(
        from_email=From(settings.email_from, settings.email_from_name),
        plain_text_content=PlainTextContent(TEXT_TAG),
        html_content=HtmlContent(HTML_TAG) if messages[0].html is not None else None,
    )
    if settings.email_reply_to:
        mail.reply_to = ReplyTo(settings.email_reply_to)
    for message in messages:
        p = Personalization()
        p.add_to(To(message.to))
        p.subject = message.subject or ""
        p.add_substitution(Substitution(TEXT_TAG, message.text))
        if message.html is not None:
            p.add_substitution(Substitution(HTML_TAG, message.html))
        for name, value in message.headers.items():
            p.add_header(Header(name, value))
        for name, value in message.custom_args.items():
            p.add_custom_arg(CustomArg(name, value))
        mail.add_personalization(p)
    return mail


def send_units(messages: Sequence[OutboundMessage], limit: int) -> list[list[OutboundMessage]]:
    """``messages`` cut into requests: same-template groups of up to ``limit``, others alone."""
    groups: dict[tuple[str, str, bool], list[OutboundMessage]] = {}
    units: list[list[OutboundMessage]] = []
    for message in messages:
        key = bulk_key(message) if limit > 1 else None
        if key is None:
            units.append([message])
        else:
            groups.setdefault(key, []).append(message)
    for group in groups.values():
        units.extend(group[i : i + limit] for i in range(0, len(group), limit))
    return units


def _refusal(exc: HTTPError) -> Failure:
    """What SendGrid's error response means; raises ProviderAuthError when it refused our key
    (the run stops instead of failing every message)."""
    body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body)
    failure = classify_sendgrid(exc.status_code, body, exc.headers)
    if failure.auth:
        raise ProviderAuthError(failure.error) from None
    return failure


class SendGridChannel:
    """Email through SendGrid; one SDK client (and its settings) per channel object."""

    name = "email"
    provider = "sendgrid"

    def __init__(
        self,
        settings: ChannelSettings,
        api_key: SecretStr,
        base_url: str = "https://api.sendgrid.com",
        timeout: float = 10.0,
    ) -> None:
        self.settings = settings
        self.base_url = base_url.rstrip("/")
        self._client = SendGridAPIClient(api_key=api_key.get_secret_value(), host=self.base_url)
        self._client.client.timeout = timeout
        self.bucket = limiter_for("email", settings.email_rate_limit)
        #: Most personalizations per request; 1 sends one request per message.
        self.bulk_size = MAX_PERSONALIZATIONS

    def __repr__(self) -> str:
        return f"SendGridChannel(base_url={self.base_url!r})"

    def _send_one(self, message: OutboundMessage) -> SendResult:
        try:
            response = self._client.send(build_mail(message, self.settings))
        except HTTPError as exc:
            return _refusal(exc).result(message.reminder_id, self.provider)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            return classify_network(getattr(exc, "reason", exc)).result(
                message.reminder_id, self.provider
            )
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        return SendResult(message.reminder_id, True, self.provider, message_id)

    def _send_bulk(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        """One result per message of one same-template request, split on rejection."""
        if len(messages) == 1:
            return [self._send_alone(messages[0])]
        half = len(messages) // 2
        try:
            mail = build_bulk_mail(messages, self.settings).get()
        except Exception:  # noqa: BLE001 - the SDK refuses e.g. a malformed address: split
            return self._send_bulk(messages[:half]) + self._send_bulk(messages[half:])
        try:
            response = self._client.send(mail)
        except HTTPError as exc:
            failure = _refusal(exc)
            if failure.result(0, self.provider).error_code in _SPLITTABLE:
                return self._send_bulk(messages[:half]) + self._send_bulk(messages[half:])
            return [failure.result(m.reminder_id, self.provider) for m in messages]
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            failure = classify_network(getattr(exc, "reason", exc))
            return [failure.result(m.reminder_id, self.provider) for m in messages]
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        return [SendResult(m.reminder_id, True, self.provider, message_id) for m in messages]

    def _send_alone(self, message: OutboundMessage) -> SendResult:
        """The result of one message on its own request; an unexpected error (e.g. the SDK
        refusing a malformed address) fails this message only."""
        try:
            return self._send_one(message)
        except ProviderAuthError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad message must not sink the others
            return SendResult(
                message.reminder_id,
                False,
                self.provider,
                error_code="unexpected_error",
                error=f"{type(exc).__name__}: {scrub(str(exc))[:300]}",
            )

    def _send_unit(self, unit: list[OutboundMessage]) -> list[SendResult]:
        # One request: the limit counts its messages (SendGrid counts each personalization),
        # and a Prefect limit is asked once for the request, not once per message.
        self.bucket.acquire(len(unit))
        return self._send_bulk(unit)

    def _unit_size(self) -> int:
        """Most messages per request: ``bulk_size``, and under a rate limit at most one
        second of sends, so one request never carries more than the provider allows in a
        second."""
        rate = self.settings.email_rate_limit
        return min(self.bulk_size, block_size(paced_rate(rate))) if rate > 0 else self.bulk_size

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        """One result per message, in order; same-template messages share a request."""
        if self.bulk_size <= 1:
            return send_concurrently(
                messages, self._send_one, self.provider, self.bucket, self.settings.send_concurrency
            )
        units = send_units(messages, self._unit_size())
        workers = min(self.settings.send_concurrency, len(units))
        if workers <= 1:
            done = [self._send_unit(u) for u in units]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                done = list(pool.map(self._send_unit, units))
        by_id = {r.reminder_id: r for results in done for r in results}
        return [by_id[m.reminder_id] for m in messages]

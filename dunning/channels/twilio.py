"""Twilio SMS channel through the official ``twilio`` SDK (Messages resource)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from pydantic import SecretStr
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from dunning.channels.errors import classify_network, classify_twilio
from dunning.channels.ratelimit import limiter_for, send_concurrently
from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage, SendResult
from dunning.errors import ConfigError, ProviderAuthError

if TYPE_CHECKING:
    from dunning.core.messages import StaleClaim

TWILIO_API = "https://api.twilio.com"
#: Kept-alive connections per host: above the sends in flight of a worker (tasks x threads).
POOL_SIZE = 64


class BaseUrlHttpClient(TwilioHttpClient):
    """The SDK's HTTP client with api.twilio.com rewritten to ``base_url`` (fakes, Prism),
    one pooled session, and the last response headers kept per thread (for Retry-After)."""

    def __init__(
        self, base_url: str = TWILIO_API, timeout: float = 10.0, pool_size: int = POOL_SIZE
    ) -> None:
        super().__init__(pool_connections=True, timeout=timeout)
        self.base_url = base_url.rstrip("/")
        self._local = threading.local()
        # Why own adapters: the SDK's pool keeps min(32, cpus + 4) connections for https only;
        # with more sends in flight (every delivery task shares this channel) the surplus
        # connections were opened and thrown away per request, and http:// got 10.
        assert self.session is not None
        for scheme in ("https://", "http://"):
            self.session.mount(scheme, HTTPAdapter(pool_connections=4, pool_maxsize=pool_size))

    def log_request(self, kwargs: dict[str, Any]) -> None:
        """The SDK's request log, only when its logger is on (it formats ten lines a call)."""
        if self.logger.isEnabledFor(logging.INFO):
            super().log_request(kwargs)

    def log_response(self, status_code: int, response: Any) -> None:
        """The SDK's response log, only when its logger is on."""
        if self.logger.isEnabledFor(logging.INFO):
            super().log_response(status_code, response)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        """The response of the request, sent to the configured base URL."""
        if url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        self._local.headers = None
        response = super().request(method, url, *args, **kwargs)
        self._local.headers = response.headers
        return response

    @property
    def thread_headers(self) -> Any:
        """Headers of this thread's last response (None when there was none)."""
        return getattr(self._local, "headers", None)


class TwilioChannel:
    """SMS through Twilio; one Client and HTTP session per channel object."""

    name = "sms"
    provider = "twilio"

    def __init__(
        self,
        settings: ChannelSettings,
        account_sid: str,
        auth_token: SecretStr,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        base_url: str = TWILIO_API,
        timeout: float = 10.0,
        status_callback_url: str | None = None,
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ConfigError(
                "Twilio needs a sender: set DUNNING_TWILIO_FROM_NUMBER (E.164) "
                "or DUNNING_TWILIO_MESSAGING_SERVICE_SID"
            )
        self.settings = settings
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback_url = status_callback_url
        self.http = BaseUrlHttpClient(base_url, timeout)
        self._client = Client(account_sid, auth_token.get_secret_value(), http_client=self.http)
        self.bucket = limiter_for("sms", settings.sms_rate_limit)

    def __repr__(self) -> str:
        return f"TwilioChannel(base_url={self.http.base_url!r})"

    def _send_one(self, message: OutboundMessage) -> SendResult:
        kwargs: dict[str, Any] = {"to": message.to, "body": message.text}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            kwargs["from_"] = self.from_number
        if self.status_callback_url:
            kwargs["status_callback"] = callback_for(self.status_callback_url, message.reminder_id)
        return twilio_send(
            self.http,
            self.provider,
            message.reminder_id,
            lambda: self._client.messages.create(**kwargs),
        )

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        """One result per message, in order, with bounded concurrency under the rate limit."""
        return send_concurrently(
            messages, self._send_one, self.provider, self.bucket, self.settings.send_concurrency
        )

    def find_sent(self, claim: StaleClaim) -> str | None:
        """The sid of the message Twilio holds for a stale claim, or None when it has none.

        Twilio keeps no reminder id, so a message matches when it went to the claim's number
        after the claim and its body names the reminder's invoice; sids the ledger already
        holds belong to other reminders. Raises NotImplementedError when Twilio cannot be
        asked (no number, no answer), so the row is surfaced as unknown, never re-sent.
        """
        if not claim.to_address or claim.claimed_at is None:
            raise NotImplementedError
        # Why the margin: Twilio's clock and ours differ a little; the body match decides.
        since = claim.claimed_at - dt.timedelta(minutes=2)
        try:
            listed = self._client.messages.list(
                to=claim.to_address, date_sent_after=since, limit=200
            )
        except (TwilioRestException, requests.RequestException):
            raise NotImplementedError from None
        invoice_number, known = _ledger_facts(claim.reminder_id, [m.sid for m in listed])
        # Why the look-arounds: INV-1 must not match a message about INV-10.
        names = re.compile(rf"(?<![\w-]){re.escape(invoice_number)}(?![\w-])")
        for message in sorted(listed, key=lambda m: m.date_created or since):
            if message.sid not in known and names.search(message.body or ""):
                return str(message.sid)
        return None


def twilio_send(
    http: BaseUrlHttpClient, provider: str, reminder_id: int, create: Callable[[], Any]
) -> SendResult:
    """The SendResult of one Twilio create request (a message or a call) made by ``create``:
    the new sid, or the classified failure. Raises ProviderAuthError when Twilio refuses the
    credentials (the run stops)."""
    try:
        created = create()
    except TwilioRestException as exc:
        failure = classify_twilio(exc.status, exc.code, exc.msg, http.thread_headers)
        if failure.auth:
            raise ProviderAuthError(failure.error) from None
        return failure.result(reminder_id, provider)
    except (requests.Timeout, requests.ConnectionError) as exc:
        return classify_network(exc).result(reminder_id, provider)
    return SendResult(reminder_id, True, provider, created.sid)


def _ledger_facts(reminder_id: int, sids: list[str]) -> tuple[str, set[str]]:
    """The invoice number of ``reminder_id`` and which of ``sids`` the ledger already holds."""
    from sqlalchemy import select

    from dunning.db import get_engine
    from dunning.db.models import Invoice, Reminder

    with get_engine().connect() as conn:
        number = conn.execute(
            select(Invoice.invoice_number)
            .join(Reminder, Reminder.invoice_id == Invoice.id)
            .where(Reminder.id == reminder_id)
        ).scalar_one()
        known = set(
            conn.execute(
                select(Reminder.provider_message_id).where(Reminder.provider_message_id.in_(sids))
            ).scalars()
        )
        return str(number), {str(s) for s in known}


#: The query parameter of a status callback URL that names the reminder (signed by Twilio
#: with the rest of the URL, so it cannot be forged).
CALLBACK_REMINDER_PARAM = "reminder_id"


def callback_for(url: str, reminder_id: int) -> str:
    """``url`` with ``reminder_id=<id>`` added to its query.

    Why: when the send times out we never learn the message's sid, so the status callback is
    the only news that it went out; the reminder id in its URL lets track-responses settle
    the ambiguous claim (``dunning.ledger.events.settle_ambiguous``).
    """
    parts = urlsplit(url)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k != CALLBACK_REMINDER_PARAM
    ]
    query.append((CALLBACK_REMINDER_PARAM, str(reminder_id)))
    return urlunsplit(parts._replace(query=urlencode(query)))

"""Twilio voice channel: reminder calls through the official ``twilio`` SDK (Calls resource).

A call is created with ``Url`` pointing at our webhook receiver (``/webhooks/twilio/voice``),
which answers with the TwiML once answering-machine detection knows who picked up: the full
reminder and menu for a person, a short call-back message for a machine. The call's end
(completed, no-answer, busy, failed) comes back to ``/webhooks/twilio/status``, signed.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import requests
from pydantic import SecretStr
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from dunning.channels.ratelimit import limiter_for, send_concurrently
from dunning.channels.twilio import TWILIO_API, BaseUrlHttpClient, _ledger_facts, twilio_send
from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage, SendResult
from dunning.errors import ConfigError

if TYPE_CHECKING:
    from dunning.core.messages import StaleClaim

#: Where Twilio fetches a call's TwiML and posts its digits (path of the webhook receiver).
VOICE_PATH = "/webhooks/twilio/voice"
#: Where Twilio posts a call's status callbacks (path of the webhook receiver).
STATUS_PATH = "/webhooks/twilio/status"


def answer_url(base: str | None, reminder_id: int) -> str:
    """The URL Twilio fetches a call's TwiML from: ``base`` (the public URL of the webhook
    receiver, DUNNING_WEBHOOK_PUBLIC_URL) plus the voice path and the reminder id."""
    return f"{(base or '').rstrip('/')}{VOICE_PATH}?{urlencode({'reminder_id': reminder_id})}"


class TwilioVoiceChannel:
    """Reminder calls through Twilio; one Client and HTTP session per channel object."""

    name = "voice"
    provider = "twilio"

    def __init__(
        self,
        settings: ChannelSettings,
        account_sid: str,
        auth_token: SecretStr,
        from_number: str | None,
        base_url: str = TWILIO_API,
        timeout: float = 10.0,
    ) -> None:
        if not from_number:
            raise ConfigError(
                "Twilio calls need a caller ID: set DUNNING_VOICE_FROM_NUMBER or "
                "DUNNING_TWILIO_FROM_NUMBER (E.164, a number of your account)"
            )
        if not settings.webhook_public_url:
            raise ConfigError(
                "Twilio calls fetch their TwiML from the webhook receiver: set "
                "DUNNING_WEBHOOK_PUBLIC_URL to its public base URL "
                "(e.g. https://hooks.example.com)"
            )
        self.settings = settings
        self.from_number = from_number
        self.public_url = settings.webhook_public_url.rstrip("/")
        self.http = BaseUrlHttpClient(base_url, timeout)
        self._client = Client(account_sid, auth_token.get_secret_value(), http_client=self.http)
        self.bucket = limiter_for("voice", settings.voice_rate_limit)

    def __repr__(self) -> str:
        return f"TwilioVoiceChannel(base_url={self.http.base_url!r})"

    def call_kwargs(self, message: OutboundMessage) -> dict[str, Any]:
        """The ``calls.create`` arguments for ``message``."""
        return {
            "to": message.to,
            "from_": self.from_number,
            "url": answer_url(self.public_url, message.reminder_id),
            "method": "POST",
            "status_callback": self.public_url + STATUS_PATH,
            "status_callback_method": "POST",
            "machine_detection": self.settings.voice_machine_detection,
            "timeout": self.settings.voice_ring_timeout_seconds,
        }

    def _send_one(self, message: OutboundMessage) -> SendResult:
        kwargs = self.call_kwargs(message)
        return twilio_send(
            self.http,
            self.provider,
            message.reminder_id,
            lambda: self._client.calls.create(**kwargs),
        )

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        """One result per call, in order, with bounded concurrency under the rate limit."""
        return send_concurrently(
            messages, self._send_one, self.provider, self.bucket, self.settings.send_concurrency
        )

    def find_sent(self, claim: StaleClaim) -> str | None:
        """The sid of the call Twilio placed for a stale claim, or None when it placed none.

        Twilio's call list is asked for calls to the claim's number started since the claim
        (StartTime>); a call carries no text to match, so the earliest such call whose sid
        the ledger does not hold yet is taken (at most one call per customer per day makes
        it this reminder's). Raises NotImplementedError when Twilio cannot be asked, so the
        row is surfaced as unknown, never called again.
        """
        if not claim.to_address or claim.claimed_at is None:
            raise NotImplementedError
        # Why the margin: Twilio's clock and ours differ a little.
        since = claim.claimed_at - dt.timedelta(minutes=2)
        try:
            listed = self._client.calls.list(to=claim.to_address, start_time_after=since, limit=50)
        except (TwilioRestException, requests.RequestException):
            raise NotImplementedError from None
        _, known = _ledger_facts(claim.reminder_id, [c.sid for c in listed])
        for call in sorted(listed, key=lambda c: c.start_time or c.date_created or since):
            if call.sid not in known:
                return str(call.sid)
        return None

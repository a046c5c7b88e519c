"""Provider error classification: (HTTP status, provider code, headers) -> SendResult fields.

Pure functions, one table per provider, from the providers' documentation:
- Twilio error codes: https://www.twilio.com/docs/api/errors (20003 auth, 20429 rate limit,
  21211 invalid 'To', 21408 region not enabled, 21610 unsubscribed recipient, 21612 route
  not possible, 21614 not a mobile number).
- SendGrid v3 Mail Send responses: 400 bad request, 401 unauthorized, 403 forbidden,
  413 payload too large, 429 rate limited (X-RateLimit-Reset, epoch seconds), 5xx.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dunning.core.messages import SendResult
from dunning.masking import scrub


@dataclass(frozen=True)
class Failure:
    """Why one message was not accepted, in the ledger's terms."""

    error_code: str
    error: str
    transient: bool = False
    retry_after: float | None = None
    opt_out: bool = False
    invalid_address: bool = False
    auth: bool = False  # our credentials were refused: stop the run

    def result(self, reminder_id: int, provider: str) -> SendResult:
        """The SendResult for ``reminder_id`` that records this failure."""
        return SendResult(
            reminder_id=reminder_id,
            ok=False,
            provider=provider,
            error_code=self.error_code,
            error=self.error,
            transient=self.transient,
            retry_after=self.retry_after,
            opt_out=self.opt_out,
            invalid_address=self.invalid_address,
        )


# Twilio codes that are permanent for this recipient; (opt_out, invalid_address, reason).
_TWILIO_PERMANENT: dict[int, tuple[bool, bool, str]] = {
    21211: (False, True, "invalid 'To' phone number"),
    21408: (False, False, "permission to send to this region is not enabled"),
    21610: (True, False, "recipient has unsubscribed (replied STOP)"),
    21612: (False, True, "no route to this number (landline or unreachable carrier)"),
    21614: (False, True, "'To' number is not a valid mobile number"),
    # Calls (https://www.twilio.com/docs/api/errors): 21214 'To' number cannot be reached,
    # 21215 international call permission (geo permissions), 21216 call blocked by Twilio.
    21214: (False, True, "'To' phone number cannot be reached by a call"),
    21215: (False, False, "geo permission for calls to this number is not enabled"),
    21216: (False, False, "Twilio blocked calls to this number"),
}
_TWILIO_AUTH = {20003}
_TWILIO_TRANSIENT = {20429}

_SENDGRID_PERMANENT = {
    400: "request rejected as invalid (bad request)",
    403: "sender or request forbidden (unverified sender or missing scope)",
    413: "message too large",
}


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() == wanted:
            return str(value)
    return None


def retry_after_seconds(
    headers: Mapping[str, Any] | None, now: dt.datetime | None = None
) -> float | None:
    """Seconds to wait before retrying, from Retry-After (seconds or HTTP date) or
    X-RateLimit-Reset (epoch seconds); None when neither header is usable."""
    now = now or dt.datetime.now(dt.UTC)
    value = _header(headers, "Retry-After")
    if value is not None:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=dt.UTC)
                return max(0.0, (when - now).total_seconds())
    reset = _header(headers, "X-RateLimit-Reset")
    if reset is not None:
        try:
            epoch = float(reset.strip())
        except ValueError:
            return None
        return max(0.0, epoch - now.timestamp())
    return None


def _http_transient(status: int) -> bool:
    return status == 429 or status >= 500 or status == 408


def classify_twilio(
    status: int,
    code: int | None,
    message: str,
    headers: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> Failure:
    """The Failure for a Twilio API error response (HTTP ``status``, Twilio ``code``)."""
    text = scrub(message or "")[:300]
    if code is not None and code < 10000:
        code = None  # the SDK fills in the HTTP status when the body has no Twilio code
    if status == 401 or code in _TWILIO_AUTH:
        return Failure(
            error_code=str(code or "http_401"),
            error="Twilio refused the credentials: check DUNNING_TWILIO_ACCOUNT_SID and "
            "DUNNING_TWILIO_AUTH_TOKEN (or the Twilio credentials block)",
            auth=True,
        )
    if code in _TWILIO_PERMANENT:
        opt_out, invalid, reason = _TWILIO_PERMANENT[code]
        return Failure(str(code), f"{reason}: {text}", opt_out=opt_out, invalid_address=invalid)
    if code in _TWILIO_TRANSIENT or _http_transient(status):
        return Failure(
            str(code) if code else f"http_{status}",
            f"Twilio temporarily unavailable (HTTP {status}): {text}",
            transient=True,
            retry_after=retry_after_seconds(headers, now),
        )
    return Failure(
        str(code) if code else f"http_{status}", f"Twilio rejected (HTTP {status}): {text}"
    )


def classify_sendgrid(
    status: int,
    body: str,
    headers: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> Failure:
    """The Failure for a SendGrid v3 Mail Send error response with HTTP ``status``."""
    text = scrub(body or "")[:300]
    code = f"http_{status}"
    if status == 401:
        return Failure(
            code,
            "SendGrid refused the API key: check DUNNING_SENDGRID_API_KEY (or the SendGrid "
            "credentials block) and that the key has the mail.send scope",
            auth=True,
        )
    if _http_transient(status):
        return Failure(
            code,
            f"SendGrid temporarily unavailable (HTTP {status}): {text}",
            transient=True,
            retry_after=retry_after_seconds(headers, now),
        )
    reason = _SENDGRID_PERMANENT.get(status, "request rejected")
    return Failure(code, f"SendGrid {reason} (HTTP {status}): {text}")


def classify_network(exc: BaseException) -> Failure:
    """The Failure for a timeout or connection error: always transient."""
    kind = (
        "timeout"
        if "timeout" in type(exc).__name__.lower() or "timed out" in str(exc)
        else ("connection_error")
    )
    return Failure(kind, f"{kind.replace('_', ' ')}: {type(exc).__name__}", transient=True)


def classify_smtp(code: int, message: str) -> Failure:
    """The Failure for an SMTP reply ``code`` (RFC 5321: 4xx transient, 5xx permanent;
    535 is an authentication failure)."""
    text = scrub(message or "")[:300]
    if code in (530, 534, 535):
        return Failure(
            f"smtp_{code}",
            "the SMTP server refused the login: check DUNNING_SMTP_USERNAME and "
            "DUNNING_SMTP_PASSWORD (or the SMTP credentials block)",
            auth=True,
        )
    if 400 <= code < 500:
        return Failure(f"smtp_{code}", f"SMTP temporary failure {code}: {text}", transient=True)
    invalid = code in (550, 551, 553)
    return Failure(f"smtp_{code}", f"SMTP rejected {code}: {text}", invalid_address=invalid)

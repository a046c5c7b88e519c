"""Fake Twilio Messaging (API 2010-04-01), pure core: resources, errors, paging, signed webhooks.

Wire format follows Twilio's OpenAPI document (twilio_api_v2010_messages.json): form-encoded
requests, HTTP basic auth AccountSid:AuthToken, JSON message resources with RFC 2822 dates and
Twilio's error JSON ``{code, message, more_info, status}``. Callbacks are signed with Twilio's own
``RequestValidator`` so receivers verify them exactly as in production. HTTP side: twilio_app.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.responses import JSONResponse
from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
PREFIX = f"/{API_VERSION}/Accounts"
FALLBACK_FROM = "+15005550006"  # Twilio's magic "valid From" number, used for messaging services

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = set("^{}\\[~]|€\f")


class TwilioError(Exception):
    """A request Twilio refuses: HTTP status, Twilio error code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        """Twilio's error JSON for this error."""
        body = {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }
        return JSONResponse(body, status_code=self.status, headers=headers)


def magic_to_error(to: str, from_: str) -> TwilioError | None:
    """The error Twilio's test credentials give for a magic 'To' number, else None."""
    errors = {
        "+15005550001": (21211, f"The 'To' number {to} is not a valid phone number."),
        "+15005550002": (
            21612,
            f"The 'To' phone number: {to}, is not currently reachable using "
            f"the 'From' phone number: {from_} via SMS.",
        ),
        "+15005550003": (
            21408,
            "Permission to send an SMS has not been enabled for the region "
            f"indicated by the 'To' number: {to}.",
        ),
        "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
        "+15005550009": (21614, f"To number: {to}, is not a mobile number"),
    }
    hit = errors.get(to)
    return TwilioError(400, *hit) if hit else None


def magic_from_error(from_: str) -> TwilioError | None:
    """The error Twilio's test credentials give for a magic 'From' number, else None."""
    errors = {
        "+15005550001": (
            21212,
            f"The 'From' number {from_} is not a valid phone number, "
            "shortcode, or alphanumeric sender ID.",
        ),
        "+15005550007": (
            21606,
            f"The From phone number {from_} is not a valid, SMS-capable "
            "inbound phone number or short code for your account.",
        ),
        "+15005550008": (
            21611,
            f"This 'From' number {from_} has exceeded the maximum number of queued messages",
        ),
    }
    hit = errors.get(from_)
    return TwilioError(400, *hit) if hit else None


def num_segments(body: str) -> int:
    """How many SMS segments ``body`` takes (GSM-7: 160/153 characters, else UCS-2: 70/67)."""
    if all(c in _GSM7 or c in _GSM7_EXT for c in body):
        units, single, multi = sum(2 if c in _GSM7_EXT else 1 for c in body), 160, 153
    else:
        units, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def rfc2822(instant: dt.datetime) -> str:
    """``instant`` the way Twilio writes dates: ``Thu, 24 Aug 2023 05:01:45 +0000``."""
    return email.utils.format_datetime(instant.astimezone(dt.UTC))


def public(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource (message, call) without the fake's private bookkeeping fields."""
    return {k: v for k, v in resource.items() if not k.startswith("_")}


def new_message(
    form: dict[str, str], account_sid: str, sid: str, now: dt.datetime
) -> dict[str, Any]:
    """A queued outbound message resource for a valid create request; raises TwilioError."""
    to, from_ = form.get("To", "").strip(), form.get("From", "").strip()
    service, body = form.get("MessagingServiceSid", "").strip(), form.get("Body", "")
    if not to:
        raise TwilioError(400, 21604, "A 'To' phone number is required.")
    if not from_ and not service:
        raise TwilioError(400, 21603, "A 'From' phone number is required.")
    if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
        raise TwilioError(400, 21602, "Message body is required.")
    if len(body) > 1600:
        raise TwilioError(
            400, 21617, "The concatenated message body exceeds the 1600 character limit."
        )
    if not _E164.match(to):
        raise TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    error = magic_from_error(from_) or magic_to_error(to, from_ or FALLBACK_FROM)
    if error:
        raise error
    return message_resource(
        account_sid,
        sid,
        now,
        to=to,
        from_=from_ or None,
        body=body,
        direction="outbound-api",
        status="accepted" if service and not from_ else "queued",
        messaging_service_sid=service or None,
        status_callback=form.get("StatusCallback") or None,
    )


def message_resource(
    account_sid: str,
    sid: str,
    now: dt.datetime,
    *,
    to: str,
    from_: str | None,
    body: str,
    direction: str,
    status: str,
    messaging_service_sid: str | None = None,
    status_callback: str | None = None,
) -> dict[str, Any]:
    """A message resource with every field of the spec (plus private ``_`` bookkeeping)."""
    uri = f"{PREFIX}/{account_sid}/Messages/{sid}"
    stamp = rfc2822(now)
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": body,
        "date_created": stamp,
        "date_sent": stamp,
        "date_updated": stamp,
        "direction": direction,
        "error_code": None,
        "error_message": None,
        "from": from_,
        "messaging_service_sid": messaging_service_sid,
        "num_media": "0",
        "num_segments": str(num_segments(body)),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": to,
        "uri": f"{uri}.json",
        "_sent_at": now,
        "_status_callback": status_callback,
    }


def status_sequence(to: str, failures: dict[str, tuple[str, int]]) -> list[tuple[str, int | None]]:
    """The statuses a message to ``to`` goes through after queued, each with its ErrorCode."""
    if to in failures:
        final, code = failures[to]
        return [(final, code)] if final == "failed" else [("sent", None), (final, code)]
    return [("sent", None), ("delivered", None)]


def callback_params(
    resource: dict[str, Any], status: str, error_code: int | None
) -> dict[str, str]:
    """The form fields of a status callback for ``resource`` in ``status``."""
    params = {
        "AccountSid": resource["account_sid"],
        "ApiVersion": API_VERSION,
        "From": resource["from"] or FALLBACK_FROM,
        "MessageSid": resource["sid"],
        "MessageStatus": status,
        "SmsSid": resource["sid"],
        "SmsStatus": status,
        "To": resource["to"],
    }
    if resource.get("messaging_service_sid"):
        params["MessagingServiceSid"] = resource["messaging_service_sid"]
    if error_code is not None:
        params["ErrorCode"] = str(error_code)
    return params


def inbound_params(account_sid: str, sid: str, from_: str, to: str, body: str) -> dict[str, str]:
    """The form fields Twilio posts to a number's webhook for an incoming SMS."""
    return {
        "ToCountry": "US",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "",
        "To": to,
        "ToZip": "",
        "NumSegments": str(num_segments(body)),
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": from_,
        "ApiVersion": API_VERSION,
    }


def sign(auth_token: str, url: str, params: dict[str, str]) -> dict[str, str]:
    """The headers of a signed Twilio webhook POST (X-Twilio-Signature)."""
    signature = RequestValidator(auth_token).compute_signature(url, params)
    return {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"}


def _parse_date(value: str, name: str) -> tuple[dt.datetime, bool]:
    """The instant of a DateSent filter and whether it names a whole day; raises TwilioError."""
    try:
        if len(value) == 10:
            return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC), True
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise TwilioError(
            400, 20001, f"Invalid {name}: {value}; use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)), False


MESSAGE_FILTERS = ("To", "From", "DateSent", "DateSent<", "DateSent>")


def matches(
    resource: dict[str, Any], query: dict[str, str], date: str = "DateSent", field: str = "_sent_at"
) -> bool:
    """Whether ``resource`` passes the list filters To, From and ``date`` (=, <, >) on its
    instant ``field`` (messages: DateSent on when it was sent; calls: StartTime)."""
    if "To" in query and resource["to"] != query["To"]:
        return False
    if "From" in query and resource["from"] != query["From"]:
        return False
    if "Status" in query and resource["status"] != query["Status"]:
        return False
    names = (date, f"{date}<", f"{date}>")
    sent: dt.datetime | None = resource[field]
    if sent is None:
        # A call not yet dialled has no start time: no date filter matches it.
        return not any(n in query for n in names)
    for name in names:
        if name not in query:
            continue
        bound, whole_day = _parse_date(query[name], name)
        left, right = (sent.date(), bound.date()) if whole_day or name == date else (sent, bound)
        ok = (
            left == right
            if name == date
            else (left <= right if name == f"{date}<" else left >= right)
        )
        if not ok:
            return False
    return True


def list_page(
    items: list[dict[str, Any]],
    path: str,
    query: dict[str, str],
    key: str = "messages",
    filter_names: tuple[str, ...] = MESSAGE_FILTERS,
    match: Callable[[dict[str, Any], dict[str, str]], bool] = matches,
) -> dict[str, Any]:
    """One page of the list ``key`` (messages, calls) with Twilio's paging fields, filtered by
    ``match`` on the query parameters ``filter_names``; raises TwilioError."""
    try:
        size = min(max(int(query.get("PageSize", "50")), 1), 1000)
        page = max(int(query.get("Page", "0")), 0)
    except ValueError:
        raise TwilioError(400, 20001, "Page and PageSize must be integers") from None
    filters = {k: v for k, v in query.items() if k in filter_names}
    chosen = [r for r in items if match(r, filters)]
    start = page * size
    rows = chosen[start : start + size]

    def uri(n: int, token: str | None = None) -> str:
        extra = {"PageSize": size, "Page": n, **({"PageToken": token} if token else {})}
        return f"{path}?{urlencode({**filters, **extra})}"

    more = start + size < len(chosen)
    return {
        key: [public(r) for r in rows],
        "start": start,
        "end": start + max(len(rows) - 1, 0),
        "page": page,
        "page_size": size,
        "uri": uri(page),
        "first_page_uri": uri(0),
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "next_page_uri": uri(page + 1, "PA" + rows[-1]["sid"]) if more and rows else None,
    }

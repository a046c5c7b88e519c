"""Per-provider request verification: raw request in, inbox records out (pure functions).

Each verifier raises ``Refused`` with the HTTP status to answer; nothing is stored then.
"""

from __future__ import annotations

import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe
from sendgrid.helpers.eventwebhook import EventWebhook
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator


class Refused(Exception):
    """A request that must be answered with ``status`` and stored nowhere."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class InboxRecord:
    """One verified provider event, ready for the webhook_inbox table."""

    provider: str
    event_id: str
    event_type: str
    payload: str


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "body is not UTF-8") from None


def _check_age(timestamp: int, now: dt.datetime, tolerance: int) -> None:
    # Replayed captures are refused by age; the inbox's unique key catches the rest.
    if abs(now.timestamp() - timestamp) > tolerance:
        raise Refused(403, f"timestamp outside the {tolerance} s tolerance")


def sendgrid_records(
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    verifier: EventWebhook,
    tolerance: int,
    now: dt.datetime,
) -> list[InboxRecord]:
    """The inbox records of a SendGrid Signed Event Webhook POST (one per event)."""
    if not signature or not timestamp:
        raise Refused(401, "missing SendGrid signature or timestamp header")
    try:
        ts = int(timestamp)
    except ValueError:
        raise Refused(400, "SendGrid timestamp header is not an integer") from None
    _check_age(ts, now, tolerance)
    payload = _decode(body)
    try:
        valid = verifier.verify_signature(payload, signature, timestamp)
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise Refused(403, "SendGrid signature does not match")
    events = _json(payload)
    if not isinstance(events, list) or not all(
        isinstance(e, dict) and e.get("sg_event_id") and e.get("event") for e in events
    ):
        raise Refused(400, "SendGrid body must be a list of events with sg_event_id and event")
    return [
        InboxRecord("sendgrid", str(e["sg_event_id"]), str(e["event"]), json.dumps(e))
        for e in events
    ]


def twilio_record(
    body: bytes, url: str, signature: str | None, validator: RequestValidator, kind: str
) -> InboxRecord:
    """The inbox record of a Twilio status callback (kind "status": a message's MessageStatus
    or a call's CallStatus) or inbound SMS ("inbound")."""
    fields = twilio_form(body, url, signature, validator)
    if kind == "status" and fields.get("CallSid") and not fields.get("MessageSid"):
        return _call_record(fields)
    sid = fields.get("MessageSid") or fields.get("SmsSid")
    if not sid:
        raise Refused(400, "Twilio request without MessageSid")
    if kind == "inbound":
        return InboxRecord("twilio", sid, "inbound", json.dumps(fields))
    status = fields.get("MessageStatus") or fields.get("SmsStatus")
    if not status:
        raise Refused(400, "Twilio status callback without MessageStatus")
    # Our callback URLs name the reminder (channels.twilio.callback_for); Twilio signed the URL,
    # so the id is as trustworthy as the body. Kept under a name Twilio never sends.
    reminder_id = dict(parse_qsl(urlsplit(url).query)).get("reminder_id", "")
    if reminder_id.isdigit():
        fields["dunning_reminder_id"] = reminder_id
    return InboxRecord("twilio", f"{sid}:{status}", status, json.dumps(fields))


def twilio_form(
    body: bytes, url: str, signature: str | None, validator: RequestValidator
) -> dict[str, str]:
    """The form fields of a Twilio request whose X-Twilio-Signature over ``url`` and the
    fields is valid (the SDK's RequestValidator); raises Refused otherwise."""
    if not signature:
        raise Refused(401, "missing X-Twilio-Signature header")
    try:
        pairs = parse_qsl(_decode(body), keep_blank_values=True, strict_parsing=bool(body))
    except ValueError:
        raise Refused(400, "body is not form-encoded") from None
    params = ImmutableMultiDict(pairs)
    if not validator.validate(url, params, signature):
        raise Refused(403, "X-Twilio-Signature does not match (check DUNNING_WEBHOOK_PUBLIC_URL)")
    return dict(pairs)


def _call_record(fields: dict[str, str]) -> InboxRecord:
    """The inbox record of a call's status callback: event type ``call_<CallStatus>``."""
    status = fields.get("CallStatus")
    if not status:
        raise Refused(400, "Twilio call status callback without CallStatus")
    return InboxRecord(
        "twilio", f"{fields['CallSid']}:{status}", f"call_{status}", json.dumps(fields)
    )


def stripe_record(
    body: bytes, header: str | None, secret: str, tolerance: int, now: dt.datetime
) -> InboxRecord:
    """The inbox record of a Stripe event verified by its Stripe-Signature header.

    The signature is checked by Stripe's official library (``stripe.WebhookSignature``:
    HMAC-SHA256 of "{t}.{body}" with the endpoint secret, any v1 signature may match); the
    timestamp must be within ``tolerance`` seconds of ``now`` either way.
    """
    if not header:
        raise Refused(401, "missing Stripe-Signature header")
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    try:
        ts = int(next(v for k, v in parts if k.strip() == "t"))
    except (StopIteration, ValueError):
        raise Refused(400, "Stripe-Signature has no valid t= timestamp") from None
    payload = _decode(body)
    try:
        # tolerance=None: the age is checked below against `now`, in both directions.
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None)
    except stripe.SignatureVerificationError:
        raise Refused(403, "Stripe-Signature does not match") from None
    _check_age(ts, now, tolerance)
    event = _json(payload)
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise Refused(400, "Stripe body must be an event with id and type")
    return InboxRecord("stripe", str(event["id"]), str(event["type"]), json.dumps(event))


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise Refused(400, "body is not valid JSON") from None


def sendgrid_verifier(public_key: str) -> EventWebhook:
    """An EventWebhook verifier for ``public_key``; ValueError when the key is unusable."""
    try:
        return EventWebhook(public_key.strip())
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValueError(f"not a valid SendGrid verification key: {type(exc).__name__}") from None

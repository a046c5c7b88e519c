"""Fake SendGrid v3 Mail Send with a signed Event Webhook.

Wire format follows SendGrid's OpenAPI document (sendgrid_v3_mail_send.json): Bearer auth,
JSON body, ``202`` with an empty body and ``X-Message-Id``, errors as
``{"errors": [{"message", "field", "help"}]}``. Events are signed the way
``sendgrid.helpers.eventwebhook.EventWebhook.verify_signature`` checks them: ECDSA P-256 with
SHA-256 over ``timestamp + payload``, the public key shown as base64 DER.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import random
import re
import string
import time
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dunning.devtools.fakes.context import FakeContext
from dunning.devtools.fakes.faults import Fault
from dunning.devtools.fakes.state import Received

MAX_BYTES = 30 * 1024 * 1024
MAX_PERSONALIZATIONS = 1000
HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_B64 = string.ascii_letters + string.digits + "-_"


def error_body(*errors: tuple[str, str | None]) -> dict[str, Any]:
    """SendGrid's error JSON for (message, field) pairs."""
    return {
        "errors": [
            {"message": message, "field": field, "help": f"{HELP}#{field}" if field else None}
            for message, field in errors
        ]
    }


def _valid_email(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("email"), str)
        and bool(_EMAIL.match(obj["email"]))
    )


def validate(mail: Any) -> list[tuple[str, str | None]]:
    """The (message, field) errors of a mail/send body; empty when SendGrid would accept it."""
    if not isinstance(mail, dict):
        return [("The request body must be a JSON object.", None)]
    errors: list[tuple[str, str | None]] = []
    personalizations = mail.get("personalizations")
    template = isinstance(mail.get("template_id"), str) and bool(mail["template_id"])
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(
            (
                "The personalizations field is required and must have at least one "
                "personalization.",
                "personalizations",
            )
        )
        personalizations = []
    elif len(personalizations) > MAX_PERSONALIZATIONS:
        errors.append(
            (
                "You may not have more than 1000 personalizations per API request. You may "
                "need to deliver your message in multiple requests.",
                "personalizations",
            )
        )
    for i, p in enumerate(personalizations[:MAX_PERSONALIZATIONS]):
        to = p.get("to") if isinstance(p, dict) else None
        if not isinstance(to, list) or not to:
            errors.append(
                (
                    "The to array is required for all personalization objects, and must have "
                    "at least one email object with a valid email address.",
                    f"personalizations.{i}.to",
                )
            )
            continue
        errors.extend(
            ("Does not contain a valid address.", f"personalizations.{i}.to.{j}.email")
            for j, address in enumerate(to)
            if not _valid_email(address)
        )
    sender = mail.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        errors.append(
            (
                "The from object must be provided for every email send. It is an object that "
                "requires the email parameter, but may also contain a name parameter.",
                "from.email",
            )
        )
    elif not _valid_email(sender):
        errors.append(("The from email does not contain a valid address.", "from.email"))
    every_has_subject = bool(personalizations) and all(
        isinstance(p, dict) and p.get("subject") for p in personalizations
    )
    if not mail.get("subject") and not template and not every_has_subject:
        errors.append(
            (
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
                "subject",
            )
        )
    content = mail.get("content")
    if not template and (not isinstance(content, list) or not content):
        errors.append(
            (
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block. We typically suggest both "
                "text/plain and text/html blocks are included, but only one block is required.",
                "content",
            )
        )
    for k, block in enumerate(content if isinstance(content, list) else []):
        if (
            not isinstance(block, dict)
            or not isinstance(block.get("value"), str)
            or not block["value"]
        ):
            errors.append(
                (
                    "The content value must be a string at least one character in length.",
                    f"content.{k}.value",
                )
            )
    for where, args in [("custom_args", mail.get("custom_args"))] + [
        (f"personalizations.{i}.custom_args", p.get("custom_args"))
        for i, p in enumerate(personalizations)
        if isinstance(p, dict)
    ]:
        if args is not None and not (
            isinstance(args, dict) and all(isinstance(v, str) for v in args.values())
        ):
            errors.append(("Custom args must be an object of string values.", where))
    return errors


def recipients(mail: dict[str, Any], x_message_id: str) -> list[dict[str, Any]]:
    """One entry per recipient: email, sg_message_id, subject and the merged custom args."""
    out = []
    for i, p in enumerate(mail["personalizations"]):
        args = {**(mail.get("custom_args") or {}), **(p.get("custom_args") or {})}
        subject = p.get("subject") or mail.get("subject") or ""
        for j, address in enumerate(p["to"] + p.get("cc", []) + p.get("bcc", [])):
            out.append(
                {
                    "email": address["email"],
                    "subject": subject,
                    "custom_args": args,
                    "sg_message_id": f"{x_message_id}.filterdrecv-fake-{i}-{j}.0",
                }
            )
    return out


def outcome(email: str, rules: tuple[tuple[str, str], ...]) -> str:
    """What happens to mail for ``email``: the first rule whose prefix starts its local part."""
    local = email.partition("@")[0].lower()
    return next((result for prefix, result in rules if local.startswith(prefix)), "delivered")


_DETAILS: dict[str, dict[str, Any]] = {
    "delivered": {"event": "delivered", "response": "250 2.0.0 OK", "tls": 1},
    "bounce": {
        "event": "bounce",
        "type": "bounce",
        "status": "5.1.1",
        "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
        "bounce_classification": "Invalid Address",
    },
    "blocked": {
        "event": "bounce",
        "type": "blocked",
        "status": "4.7.1",
        "reason": "421 4.7.1 Temporarily rate limited by the receiving server.",
        "bounce_classification": "Reputation",
    },
    "dropped": {"event": "dropped", "reason": "Bounced Address", "status": "5.0.0"},
    "spamreport": {"event": "spamreport"},
    "unsubscribe": {"event": "unsubscribe"},
    "open": {
        "event": "open",
        "useragent": "Mozilla/5.0",
        "ip": "203.0.113.7",
        "sg_machine_open": False,
    },
    "click": {
        "event": "click",
        "url": "https://example.com/pay",
        "url_offset": {"index": 0, "type": "text"},
        "useragent": "Mozilla/5.0",
        "ip": "203.0.113.7",
    },
}


def event_phases(result: str, opens: bool) -> list[list[str]]:
    """The event names per webhook batch for one recipient, in the order SendGrid sends them."""
    after = {
        "delivered": ["delivered"],
        "spamreport": ["delivered", "spamreport"],
        "unsubscribe": ["delivered", "unsubscribe"],
    }.get(result, [result])
    phases = [["processed"], after[:1]] + ([after[1:]] if after[1:] else [])
    if opens and after[0] == "delivered":
        phases.append(["open", "click"])
    return phases


def make_event(
    name: str,
    recipient: dict[str, Any],
    x_message_id: str,
    event_id: str,
    categories: list[str] | None,
) -> dict[str, Any]:
    """One Event Webhook event for ``recipient``, custom args merged at the top level."""
    event: dict[str, Any] = {
        **recipient["custom_args"],
        "email": recipient["email"],
        "timestamp": int(time.time()),
        "smtp-id": f"<{x_message_id}@ismtpd0001p1lon1.sendgrid.net>",
        "sg_event_id": event_id,
        "sg_message_id": recipient["sg_message_id"],
        **_DETAILS.get(name, {"event": name}),
    }
    if categories:
        event["category"] = categories
    return event


@lru_cache(maxsize=16)
def signing_key(seed: int) -> ec.EllipticCurvePrivateKey:
    """The P-256 key that signs the events of the fake with ``seed`` (same seed, same key)."""
    order = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
    return ec.derive_private_key(
        random.Random(f"sendgrid-key-{seed}").randrange(1, order), ec.SECP256R1()
    )


def public_key_b64(seed: int) -> str:
    """The verification key as SendGrid shows it under Mail Settings: base64 of the DER key."""
    der = (
        signing_key(seed)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(der).decode()


def sign(seed: int, payload: str, timestamp: str) -> dict[str, str]:
    """The headers of a signed Event Webhook POST carrying ``payload``."""
    signature = signing_key(seed).sign((timestamp + payload).encode(), ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        "User-Agent": "SendGrid Event API",
        SIGNATURE_HEADER: base64.b64encode(signature).decode(),
        TIMESTAMP_HEADER: timestamp,
    }


async def post_events(ctx: FakeContext, mail: dict[str, Any], x_message_id: str) -> None:
    """Post the signed event batches of one accepted send to the configured webhook URL."""
    url = ctx.config.sendgrid_event_url
    if not (url and ctx.config.callbacks):
        return
    people = recipients(mail, x_message_id)
    plans = [
        event_phases(outcome(r["email"], ctx.config.email_outcomes), ctx.config.emit_opens)
        for r in people
    ]
    for phase in range(max(len(p) for p in plans)):
        if ctx.config.callback_delay_ms:
            await asyncio.sleep(ctx.config.callback_delay_ms / 1000)
        events = [
            make_event(
                name, r, x_message_id, ctx.state.new_id("", 22, _B64), mail.get("categories")
            )
            for r, plan in zip(people, plans, strict=True)
            if phase < len(plan)
            for name in plan[phase]
        ]
        payload = json.dumps(events)
        await ctx.post(
            "sendgrid_events",
            url,
            content=payload.encode(),
            headers=sign(ctx.config.seed, payload, str(int(time.time()))),
        )


def fault_response(ctx: FakeContext, fault: Fault) -> JSONResponse:
    """SendGrid's answer to ``fault`` (429 carries X-RateLimit-* and Retry-After)."""
    if fault.is_429:
        wait = ctx.config.retry_after_s
        headers = {
            "Retry-After": str(wait),
            "X-RateLimit-Limit": str(int(ctx.config.rate_limit) or 600),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(time.time()) + wait),
        }
        return JSONResponse(
            error_body(("too many requests", None)), status_code=429, headers=headers
        )
    if fault is Fault.ERROR_500:
        return JSONResponse(error_body(("internal error", None)), status_code=500)
    return JSONResponse(error_body(("service unavailable", None)), status_code=503)


async def mail_send(request: Request) -> Response:
    """POST /v3/mail/send: 202 with X-Message-Id, or SendGrid's error JSON."""
    ctx: FakeContext = request.app.state.fakes
    await ctx.pause()
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        key.strip(), ctx.config.sendgrid_api_key
    ):
        return JSONResponse(
            error_body(("The provided authorization grant is invalid, expired, or revoked", None)),
            status_code=401,
        )
    fault = await ctx.draw_fault("sendgrid")
    if fault is not None and fault is not Fault.TIMEOUT:
        return fault_response(ctx, fault)
    raw = await request.body()
    if len(raw) > MAX_BYTES:
        return JSONResponse(
            error_body(
                (
                    "The JSON payload you have included in your request is too "
                    "large. Please ensure your payload is under 30MB.",
                    None,
                )
            ),
            status_code=413,
        )
    try:
        mail = json.loads(raw)
    except ValueError:
        return JSONResponse(
            error_body(("Bad Request: the body is not valid JSON.", None)), status_code=400
        )
    errors = validate(mail)
    if errors:
        return JSONResponse(error_body(*errors), status_code=400)
    x_message_id = ctx.state.new_id("", 22, _B64)
    ctx.state.accept(
        [
            Received(
                "sendgrid",
                r["sg_message_id"],
                r["email"],
                r["subject"],
                r["custom_args"].get("reminder_id"),
                r["custom_args"],
            )
            for r in recipients(mail, x_message_id)
        ]
    )
    ctx.spawn(post_events(ctx, mail, x_message_id))
    if fault is Fault.TIMEOUT:
        await ctx.hang()
    return Response(status_code=202, headers={"X-Message-Id": x_message_id})


routes = [Route("/v3/mail/send", mail_send, methods=["POST"])]

"""The webhook receiver: verify, store in webhook_inbox, answer 2xx fast.

Nothing is applied here; the track_responses flow applies the inbox (one-click unsubscribe,
in ``dunning.webhooks.unsubscribe``, is the exception: it must take effect at once). A forged,
malformed or oversized request is answered 4xx and stores nothing; a replayed event is stored once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from dunning.channels.twilio_config import twilio_auth_token
from dunning.config import get_settings
from dunning.config.channels import ChannelSettings
from dunning.config.webhooks import WebhookSettings
from dunning.db import get_engine
from dunning.db.models import WebhookInbox, utcnow
from dunning.errors import ConfigError
from dunning.render import templates_dir
from dunning.webhooks import unsubscribe
from dunning.webhooks.signal import InboxSignal, prefect_configured, prefect_emitter
from dunning.webhooks.verify import (
    InboxRecord,
    Refused,
    sendgrid_records,
    sendgrid_verifier,
    stripe_record,
    twilio_form,
    twilio_record,
)

log = logging.getLogger("dunning.webhooks")

JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def store_records(engine: Engine, records: Sequence[InboxRecord]) -> int:
    """The number of ``records`` newly stored (duplicates of a stored event are skipped)."""
    dialect = engine.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    stored = 0
    with engine.begin() as conn:
        for rec in records:
            stmt = (
                insert(WebhookInbox)
                .values(
                    provider=rec.provider,
                    event_id=rec.event_id,
                    event_type=rec.event_type[:64],
                    payload=rec.payload,
                    status="pending",
                    received_at=now,
                )
                .on_conflict_do_nothing(index_elements=["provider", "event_id"])
                .returning(WebhookInbox.id)
            )
            # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT.
            stored += conn.execute(stmt).first() is not None
    return stored


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _require_type(request: Request, expected: str) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != expected:
        raise Refused(415, f"content type must be {expected}")


def public_url(request: Request, base: str | None) -> str:
    """The URL the provider signed: the configured public base plus the path, else our own."""
    if not base:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return base.rstrip("/") + request.url.path + query


Handler = Callable[[Request], Awaitable[Response]]


def answer_call(
    engine: Engine,
    reminder_id: int,
    fields: dict[str, str],
    url: str,
    channel_settings: ChannelSettings,
) -> str:
    """The TwiML for one verified voice request (the call's digits post back to ``url``)."""
    from dunning.channels import get_channel
    from dunning.voice.answer import respond

    return respond(
        engine,
        reminder_id,
        fields,
        url,
        channel_settings,
        lambda: get_channel("sms", channel_settings),
    )


def create_app(
    settings: WebhookSettings | None = None,
    engine: Engine | None = None,
    channel_settings: ChannelSettings | None = None,
    signal: InboxSignal | None = None,
) -> Starlette:
    """The ASGI app receiving SendGrid, Twilio and Stripe webhooks into the inbox, and serving
    one-click unsubscribe at ``/unsubscribe/{token}`` (secret and templates from
    ``channel_settings``, default the environment), and answering reminder calls at
    ``/webhooks/twilio/voice`` (see dunning.voice.answer).

    ``signal`` is told about every newly stored record; by default a debounced
    ``dunning.webhook.received`` Prefect event when a Prefect API is configured and
    DUNNING_WEBHOOK_EVENT_SECONDS is not negative.
    """
    cfg = settings or get_settings().webhooks
    channels = channel_settings or get_settings().channels
    if signal is None and cfg.webhook_event_seconds >= 0 and prefect_configured():
        signal = InboxSignal(cfg.webhook_event_seconds, prefect_emitter)
    limit = cfg.webhook_max_body_bytes
    sg_key = cfg.sendgrid_webhook_public_key
    try:
        sg = sendgrid_verifier(sg_key) if sg_key else None
    except ValueError as exc:
        raise ConfigError(
            f"DUNNING_SENDGRID_WEBHOOK_PUBLIC_KEY: {exc}; paste the key shown under SendGrid "
            "Mail Settings > Signed Event Webhook."
        ) from None
    token = twilio_auth_token(channels)  # the one Twilio configuration, as sending reads it
    stripe = cfg.stripe_webhook_secret
    tw = RequestValidator(token.get_secret_value()) if token else None
    stripe_secret = stripe.get_secret_value() if stripe else None

    def db() -> Engine:
        return engine or get_engine()

    def guarded(
        provider: str,
        configured: bool,
        content_type: str,
        body_to_records: Callable[[Request, bytes], list[InboxRecord]],
        reply: Callable[[int, int], Response],
    ) -> Handler:
        async def endpoint(request: Request) -> Response:
            if not configured:
                # 503 so the provider retries once the operator has set the secret.
                return JSONResponse({"error": f"{provider} webhook secret is not configured"}, 503)
            try:
                _require_type(request, content_type)
                body = await _read_body(request, limit)
                records = body_to_records(request, body)
            except Refused as exc:
                log.warning("refused %s webhook: %s (%d)", provider, exc.message, exc.status)
                return JSONResponse({"error": exc.message}, exc.status)
            stored = await run_in_threadpool(store_records, db(), records)
            if signal is not None:
                signal.stored(provider, stored)
            return reply(stored, len(records) - stored)

        return endpoint

    def json_reply(stored: int, duplicates: int) -> Response:
        return JSONResponse({"stored": stored, "duplicates": duplicates})

    def twiml_reply(stored: int, duplicates: int) -> Response:
        # An empty TwiML answer: no auto-reply to the customer's SMS.
        return Response(EMPTY_TWIML, media_type="text/xml")

    def now() -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def sendgrid(request: Request, body: bytes) -> list[InboxRecord]:
        assert sg is not None
        return sendgrid_records(
            body,
            request.headers.get("x-twilio-email-event-webhook-signature"),
            request.headers.get("x-twilio-email-event-webhook-timestamp"),
            sg,
            cfg.webhook_tolerance_seconds,
            now(),
        )

    def twilio(kind: str) -> Callable[[Request, bytes], list[InboxRecord]]:
        def parse(request: Request, body: bytes) -> list[InboxRecord]:
            assert tw is not None
            url = public_url(request, cfg.webhook_public_url)
            return [twilio_record(body, url, request.headers.get("x-twilio-signature"), tw, kind)]

        return parse

    def stripe_parse(request: Request, body: bytes) -> list[InboxRecord]:
        assert stripe_secret is not None
        return [
            stripe_record(
                body,
                request.headers.get("stripe-signature"),
                stripe_secret,
                cfg.webhook_tolerance_seconds,
                now(),
            )
        ]

    async def voice(request: Request) -> Response:
        if tw is None:
            return JSONResponse({"error": "twilio webhook secret is not configured"}, 503)
        try:
            _require_type(request, FORM_TYPE)
            body = await _read_body(request, limit)
            url = public_url(request, cfg.webhook_public_url)
            fields = twilio_form(body, url, request.headers.get("x-twilio-signature"), tw)
            reminder = request.query_params.get("reminder_id", "")
            if not reminder.isdigit():
                raise Refused(400, "voice request without a numeric reminder_id in its URL")
        except Refused as exc:
            log.warning("refused twilio voice request: %s (%d)", exc.message, exc.status)
            return JSONResponse({"error": exc.message}, exc.status)
        twiml = await run_in_threadpool(answer_call, db(), int(reminder), fields, url, channels)
        return Response(twiml, media_type="text/xml")

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route(
            "/unsubscribe/{token}",
            unsubscribe.endpoint_for(
                db, channels.unsubscribe_secret.get_secret_value(), templates_dir(channels)
            ),
            methods=["GET", "POST"],
        ),
        Route(
            "/webhooks/sendgrid/events",
            guarded("sendgrid", sg is not None, JSON_TYPE, sendgrid, json_reply),
            methods=["POST"],
        ),
        Route(
            "/webhooks/twilio/status",
            guarded("twilio", tw is not None, FORM_TYPE, twilio("status"), json_reply),
            methods=["POST"],
        ),
        Route("/webhooks/twilio/voice", voice, methods=["POST"]),
        Route(
            "/webhooks/twilio/inbound",
            guarded("twilio", tw is not None, FORM_TYPE, twilio("inbound"), twiml_reply),
            methods=["POST"],
        ),
        Route(
            "/webhooks/stripe",
            guarded("stripe", stripe_secret is not None, JSON_TYPE, stripe_parse, json_reply),
            methods=["POST"],
        ),
    ]
    return Starlette(routes=routes)

"""HTTP side of the fake Twilio: the Messages endpoints, status progression and inbound SMS."""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hmac
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dunning.devtools.fakes.context import FakeContext
from dunning.devtools.fakes.faults import Fault
from dunning.devtools.fakes.state import Received
from dunning.devtools.fakes.twilio import (
    FALLBACK_FROM,
    PREFIX,
    TwilioError,
    callback_params,
    inbound_params,
    list_page,
    message_resource,
    new_message,
    public,
    rfc2822,
    sign,
    status_sequence,
)


def _authenticate(ctx: FakeContext, request: Request) -> None:
    """Raise TwilioError 20003 unless the request carries this fake's AccountSid:AuthToken."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user = password = ""
    good = (
        scheme.lower() == "basic"
        and hmac.compare_digest(user, ctx.config.twilio_account_sid)
        and hmac.compare_digest(password, ctx.config.twilio_auth_token)
    )
    if not good or request.path_params["account_sid"] != user:
        raise TwilioError(401, 20003, "Authenticate")


def fault_error(fault: Fault) -> TwilioError:
    """The Twilio error that answers ``fault``."""
    if fault.is_429:
        return TwilioError(429, 20429, "Too Many Requests")
    if fault is Fault.ERROR_500:
        return TwilioError(500, 20500, "An internal server error has occurred")
    return TwilioError(503, 20503, "Service Unavailable")


async def deliver(ctx: FakeContext, sid: str, to: str) -> None:
    """Move message ``sid`` through its statuses, posting signed callbacks where asked."""
    for status, code in status_sequence(to, ctx.config.twilio_callback_failures):
        if ctx.config.callback_delay_ms:
            await asyncio.sleep(ctx.config.callback_delay_ms / 1000)
        before = ctx.state.get_twilio(sid)
        if before is None:
            return  # the state was reset meanwhile
        resource = ctx.state.update_twilio(
            sid,
            status=status,
            date_updated=rfc2822(dt.datetime.now(dt.UTC)),
            error_code=code,
            error_message="Message delivery failed" if code else None,
            # A messaging service picks its sender when the message leaves the queue.
            **{"from": before["from"] or FALLBACK_FROM},
        )
        url = resource["_status_callback"] if resource else None
        if resource is None or not (url and ctx.config.callbacks):
            continue
        params = callback_params(resource, status, code)
        await ctx.post(
            "twilio_status",
            url,
            form=params,
            headers=sign(ctx.config.twilio_auth_token, url, params),
        )


async def create_resource(
    request: Request,
    prefix: str,
    build: Callable[[dict[str, str], str, str, dt.datetime], dict[str, Any]],
    book: Callable[[FakeContext, dict[str, str], str, dict[str, Any]], None],
) -> Response:
    """The body every Twilio create endpoint shares (Messages.json, Calls.json).

    Authenticates, draws the configured fault (a 429 carries ``Retry-After``), builds the
    resource with a fresh SID starting ``prefix`` from the form, then ``book(ctx, form, sid,
    resource)`` stores and schedules it. A TIMEOUT fault books the resource and then hangs, as a
    request that reached Twilio but whose answer was lost. Answers 201 with the public resource,
    or Twilio's error JSON.
    """
    ctx: FakeContext = request.app.state.fakes
    await ctx.pause()
    form = dict(
        parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    )
    try:
        _authenticate(ctx, request)
        fault = await ctx.draw_fault("twilio")
        if fault is not None and fault is not Fault.TIMEOUT:
            retry = {"Retry-After": str(ctx.config.retry_after_s)} if fault.is_429 else None
            return fault_error(fault).response(retry)
        sid = ctx.state.new_id(prefix, 32)
        resource = build(form, ctx.config.twilio_account_sid, sid, dt.datetime.now(dt.UTC))
    except TwilioError as exc:
        return exc.response()
    book(ctx, form, sid, resource)
    if fault is Fault.TIMEOUT:
        await ctx.hang()
    return JSONResponse(public(resource), status_code=201)


def _book_message(
    ctx: FakeContext, form: dict[str, str], sid: str, resource: dict[str, Any]
) -> None:
    ctx.state.put_twilio(resource)
    ctx.state.accept([Received("twilio", sid, resource["to"], resource["body"], None)])
    ctx.spawn(deliver(ctx, sid, resource["to"]))


async def create_message(request: Request) -> Response:
    """POST Messages.json: 201 with the queued message, or Twilio's error JSON."""
    return await create_resource(request, "SM", new_message, _book_message)


async def fetch_one(request: Request, get: Callable[[str], dict[str, Any] | None]) -> Response:
    """GET <Resource>/{Sid}.json: the resource ``get`` finds or 404 (20404)."""
    ctx: FakeContext = request.app.state.fakes
    await ctx.pause()
    try:
        _authenticate(ctx, request)
    except TwilioError as exc:
        return exc.response()
    resource = get(request.path_params["sid"])
    if resource is None:
        return TwilioError(
            404, 20404, f"The requested resource {request.url.path} was not found"
        ).response()
    return JSONResponse(public(resource))


async def list_all(request: Request, page: Callable[[FakeContext], dict[str, Any]]) -> Response:
    """GET <Resource>.json: the list ``page`` gives (filtered, paged, newest first)."""
    ctx: FakeContext = request.app.state.fakes
    await ctx.pause()
    try:
        _authenticate(ctx, request)
        return JSONResponse(page(ctx))
    except TwilioError as exc:
        return exc.response()


async def fetch_message(request: Request) -> Response:
    """GET Messages/{Sid}.json: the message resource or 404 (20404)."""
    return await fetch_one(request, request.app.state.fakes.state.get_twilio)


async def list_messages(request: Request) -> Response:
    """GET Messages.json: a filtered, paged list, newest first."""
    return await list_all(
        request,
        lambda ctx: list_page(
            ctx.state.twilio_list(), request.url.path, dict(request.query_params)
        ),
    )


def record_inbound(ctx: FakeContext, from_: str, to: str, body: str) -> dict[str, str]:
    """The webhook form of a new inbound SMS, after storing it as a received message."""
    sid = ctx.state.new_id("SM", 32)
    params = inbound_params(ctx.config.twilio_account_sid, sid, from_, to, body)
    ctx.state.put_twilio(
        message_resource(
            ctx.config.twilio_account_sid,
            sid,
            dt.datetime.now(dt.UTC),
            to=to,
            from_=from_,
            body=body,
            direction="inbound",
            status="received",
        )
    )
    return params


routes = [
    Route(PREFIX + "/{account_sid}/Messages.json", create_message, methods=["POST"]),
    Route(PREFIX + "/{account_sid}/Messages.json", list_messages, methods=["GET"]),
    Route(PREFIX + "/{account_sid}/Messages/{sid}.json", fetch_message, methods=["GET"]),
]

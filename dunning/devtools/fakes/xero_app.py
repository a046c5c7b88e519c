"""HTTP side of the fake Xero: the Accounting API paths the ``xero-python`` SDK calls, an
OAuth2 token endpoint, and admin routes that change invoices.

- ``POST /connect/token``: ``grant_type=client_credentials`` (a custom connection) or
  ``refresh_token`` (the refresh token is single use: each refresh returns a new one and the
  old one stops working, as Xero's identity server does).
- ``GET /api.xro/2.0/Contacts|Invoices|Payments``: ``Authorization: Bearer``, the
  ``xero-tenant-id`` header, ``If-Modified-Since`` (records with ``UpdatedDateUTC`` after it),
  ``page`` (1-based) and ``pageSize`` (default 100), ``where`` (``Type=="ACCREC"``), and
  ``Statuses``; answers ``{"pagination": {...}, "<Kind>": [...]}``.
- ``GET /api.xro/2.0/Invoices/{id}/OnlineInvoice``: the invoice's online URL.
- ``PUT /api.xro/2.0/Invoices/{id}/History``: add history notes (``Idempotency-Key``
  honoured: a repeated key adds nothing).
- ``POST /_fake/xero/invoices/{id}/pay|void|delete``: change an invoice as a user in Xero would.
- Every ``burst_429``-th API request is answered 429 with ``Retry-After`` and
  ``X-Rate-Limit-Problem: minute`` (Xero's rate-limit answer).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import itertools
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dunning.devtools.fakes.xero import XeroError, XeroFakeState

_KINDS = {"Contacts": "contacts", "Invoices": "invoices", "Payments": "payments"}
_UPDATED = re.compile(r"/Date\((\d+)")
_WHERE_TYPE = re.compile(r'^\s*Type\s*==\s*"(ACCREC|ACCPAY)"\s*$')


@dataclass
class XeroFakeConfig:
    """Knobs of the fake Xero: the custom connection's credentials, rate limiting."""

    client_id: str = "FAKECLIENTID0000000000000000000"
    client_secret: str = "fake-xero-client-secret"  # noqa: S105 - the fake's own test value
    burst_429: int = 0  # every Nth API request is answered 429 (0 = never)
    retry_after: int = 1  # seconds in the 429's Retry-After


@dataclass
class XeroFake:
    """A running fake Xero: its base URL, state, knobs and the tokens it issued."""

    base_url: str
    state: XeroFakeState
    config: XeroFakeConfig
    counter: Any = field(default_factory=itertools.count)
    access_tokens: set[str] = field(default_factory=set)
    #: The refresh token that works now (rotated on each use); None until ``issue_refresh``.
    refresh_token: str | None = None
    token_requests: list[str] = field(default_factory=list)

    @property
    def token_url(self) -> str:
        """The OAuth2 token endpoint (the source's ``identity_base`` + ``/connect/token``)."""
        return f"{self.base_url}/connect/token"

    def issue_refresh(self) -> str:
        """A refresh token as a user's consent would give one (it replaces any earlier)."""
        self.refresh_token = "rt-" + secrets.token_hex(16)
        return self.refresh_token


def _updated(obj: dict[str, Any]) -> dt.datetime:
    match = _UPDATED.match(str(obj.get("UpdatedDateUTC", "")))
    return dt.datetime.fromtimestamp(int(match.group(1)) / 1000 if match else 0, dt.UTC)


def _since(value: str | None) -> dt.datetime | None:
    """If-Modified-Since as ISO 8601 (what the SDK sends; no zone = UTC) or an HTTP date."""
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            raise XeroError(400, f"If-Modified-Since {value!r} is not a date") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _guard(request: Request) -> XeroFake:
    """Authentication, tenant and rate limiting of one API request."""
    fake: XeroFake = request.app.state.xero
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or token not in fake.access_tokens:
        raise XeroError(401, "AuthenticationUnsuccessful", "Unauthorized")
    if request.headers.get("xero-tenant-id") != fake.state.tenant_id:
        raise XeroError(403, "AuthorizationUnsuccessful: unknown xero-tenant-id", "Forbidden")
    n = next(fake.counter) + 1
    if fake.config.burst_429 and n % fake.config.burst_429 == 0:
        raise XeroError(429, "Rate limit exceeded", "RateLimitExceeded")
    fake.state.requests += 1
    return fake


def _answer(exc: XeroError, fake: XeroFake) -> JSONResponse:
    headers = {}
    if exc.status == 429:
        headers = {"Retry-After": str(fake.config.retry_after), "X-Rate-Limit-Problem": "minute"}
    return JSONResponse(exc.body, exc.status, headers=headers)


async def _list(request: Request) -> JSONResponse:
    fake: XeroFake = request.app.state.xero
    try:
        _guard(request)
        kind = request.path_params["kind"]
        if kind not in _KINDS:
            raise XeroError(404, f"The resource {kind} was not found", "NotFound")
        query = request.query_params
        since = _since(request.headers.get("if-modified-since"))
        page = int(query.get("page") or 1)
        size = min(int(query.get("pageSize") or 100), 1000)
        where = query.get("where")
        wanted_type = None
        if where:
            match = _WHERE_TYPE.match(where)
            if not match:
                raise XeroError(
                    400, f'the fake understands only where=Type=="ACCREC", not {where!r}'
                )
            wanted_type = match.group(1)
        statuses = set(filter(None, (query.get("Statuses") or "").split(",")))
        state = fake.state
        with state.lock:
            state.modified_since.append(request.headers.get("if-modified-since"))
            objs = list(getattr(state, _KINDS[kind]).values())
            objs = [
                o
                for o in objs
                if (since is None or _updated(o) > since)
                and (wanted_type is None or o.get("Type") == wanted_type)
                and (not statuses or o.get("Status") in statuses)
            ]
            objs.sort(key=_updated)
            chunk = objs[(page - 1) * size : page * size]
            pagination = {
                "page": page,
                "pageSize": size,
                "itemCount": len(objs),
                "pageCount": -(-len(objs) // size),
            }
            return JSONResponse({"pagination": pagination, kind: chunk})
    except XeroError as exc:
        return _answer(exc, fake)
    except ValueError:
        return _answer(XeroError(400, "page and pageSize must be whole numbers"), fake)


async def _online(request: Request) -> JSONResponse:
    fake: XeroFake = request.app.state.xero
    try:
        _guard(request)
        invoice_id = request.path_params["id"]
        with fake.state.lock:
            if invoice_id not in fake.state.invoices:
                raise XeroError(404, f"invoice {invoice_id} not found", "NotFound")
        url = f"https://in.xero.com/{invoice_id.replace('-', '')[:20]}"
        return JSONResponse({"OnlineInvoices": [{"OnlineInvoiceUrl": url}]})
    except XeroError as exc:
        return _answer(exc, fake)


async def _history(request: Request) -> JSONResponse:
    """PUT /Invoices/{id}/History: ``{"HistoryRecords": [{"Details": …}]}``."""
    fake: XeroFake = request.app.state.xero
    try:
        _guard(request)
        try:
            body = await request.json()
            details = [str(r.get("Details") or "") for r in body["HistoryRecords"]]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise XeroError(400, "the body must be {HistoryRecords: [{Details}]}") from None
        answer = fake.state.add_history(
            request.path_params["id"], details, request.headers.get("idempotency-key")
        )
        return JSONResponse(answer)
    except XeroError as exc:
        return _answer(exc, fake)


async def _token(request: Request) -> JSONResponse:
    """Xero's identity server: client credentials or a single-use refresh token."""
    fake: XeroFake = request.app.state.xero
    form = dict(parse_qsl((await request.body()).decode("utf-8")))
    grant = str(form.get("grant_type") or "")
    fake.token_requests.append(grant)
    if (form.get("client_id"), form.get("client_secret")) != (
        fake.config.client_id,
        fake.config.client_secret,
    ):
        return JSONResponse({"error": "invalid_client"}, 400)
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "expires_in": 1800,
        "scope": "accounting.transactions.read accounting.contacts.read",
    }
    if grant == "refresh_token":
        if not fake.refresh_token or form.get("refresh_token") != fake.refresh_token:
            return JSONResponse({"error": "invalid_grant"}, 400)
        body["refresh_token"] = fake.issue_refresh()
    elif grant != "client_credentials":
        return JSONResponse({"error": "unsupported_grant_type"}, 400)
    body["access_token"] = "at-" + secrets.token_hex(16)
    fake.access_tokens.add(body["access_token"])
    return JSONResponse(body)


async def _admin(request: Request) -> JSONResponse:
    """POST /_fake/xero/invoices/{id}/{pay|void|delete}: a change made in Xero."""
    fake: XeroFake = request.app.state.xero
    invoice_id, action = request.path_params["id"], request.path_params["action"]
    try:
        if action == "pay":
            return JSONResponse(fake.state.pay(invoice_id))
        if action in ("void", "delete"):
            status = "VOIDED" if action == "void" else "DELETED"
            return JSONResponse(fake.state.set_status(invoice_id, status))
        raise XeroError(404, f"unknown action {action!r}; use pay, void or delete", "NotFound")
    except XeroError as exc:
        return _answer(exc, fake)


def create_xero_app(fake: XeroFake) -> Starlette:
    """The ASGI app of the fake Xero for ``fake``."""
    routes = [
        Route("/connect/token", _token, methods=["POST"]),
        Route("/api.xro/2.0/Invoices/{id}/OnlineInvoice", _online, methods=["GET"]),
        Route("/api.xro/2.0/Invoices/{id}/History", _history, methods=["PUT"]),
        Route("/api.xro/2.0/{kind}", _list, methods=["GET"]),
        Route("/_fake/xero/invoices/{id}/{action}", _admin, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.xero = fake
    return app


@contextlib.contextmanager
def run_xero_fake(
    config: XeroFakeConfig | None = None, state: XeroFakeState | None = None
) -> Iterator[XeroFake]:
    """A fake Xero served on a free 127.0.0.1 port in a background thread."""
    from dunning.devtools.fakes.server import serve_in_thread

    fake = XeroFake("", state or XeroFakeState(), config or XeroFakeConfig())
    with serve_in_thread(create_xero_app(fake), "dunning-fake-xero") as base_url:
        fake.base_url = base_url
        yield fake

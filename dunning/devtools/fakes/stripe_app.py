"""HTTP side of the fake Stripe: Stripe's wire protocol for customers, invoices and events.

Speaks what the official ``stripe`` SDK sends and reads: form-encoded requests with bracket
keys (``expand[]=data.customer``, ``metadata[k]=v``), ``Authorization: Bearer sk_...``, list
objects (``object: list``, ``data``, ``has_more``, ``url``) paged by ``starting_after`` and
``ending_before``, errors as ``{"error": {"type", "code", "message", "param"}}`` with Stripe's
status codes, and 429 ``rate_limit`` answers (every ``burst_429``-th request) that a client
must retry. ``latency_ms`` is added to every API request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dunning.devtools.fakes.stripe import StripeError, StripeFakeState

_LIST_PARAMS = {"limit", "starting_after", "ending_before", "expand"}
_ALLOWED = {
    "customers": _LIST_PARAMS | {"email", "created"},
    "invoices": _LIST_PARAMS | {"status", "customer", "created"},
    "events": _LIST_PARAMS | {"type", "types", "created"},
}
_CUSTOMER_FIELDS = {"name", "email", "phone", "address", "preferred_locales", "metadata", "expand"}


@dataclass
class StripeFakeConfig:
    """Knobs of the fake Stripe."""

    api_key: str = "sk_test_fake_dunning"
    latency_ms: float = 0.0
    burst_429: int = 0  # every Nth API request is answered 429 (0 = never)


@dataclass
class StripeFake:
    """A running fake Stripe: its base URL (``DUNNING_STRIPE_API_BASE``), state and knobs."""

    base_url: str
    state: StripeFakeState
    config: StripeFakeConfig
    counter: Any = field(default_factory=itertools.count)

    def env(self) -> dict[str, str]:
        """The variables that point the Stripe source at this fake."""
        return {
            "DUNNING_STRIPE_API_BASE": self.base_url,
            "DUNNING_STRIPE_API_KEY": self.config.api_key,
        }


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding as nested values: ``a[b]=1`` -> {a: {b: 1}}, ``a[]=x`` and
    ``a[0]=x`` -> {a: [x]}."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        if not rest:
            out[head] = value
            continue
        inner = rest.rstrip("]")
        if inner == "" or inner.isdigit():
            out.setdefault(head, []).append(value)
        else:
            target = out.setdefault(head, {})
            if isinstance(target, dict):
                target[inner.split("][")[0]] = value
    return out


def _check(kind: str, params: dict[str, Any]) -> None:
    for name in params:
        if name not in _ALLOWED[kind]:
            raise StripeError(400, f"Received unknown parameter: {name}", param=name)


async def _guard(request: Request) -> None:
    """Latency, authentication and rate limiting of one API request."""
    fake: StripeFake = request.app.state.stripe
    if fake.config.latency_ms:
        await asyncio.sleep(fake.config.latency_ms / 1000)
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or key != fake.config.api_key:
        shown = f"{key[:8]}****{key[-4:]}" if len(key) > 12 else "****"
        raise StripeError(401, f"Invalid API Key provided: {shown}")
    n = next(fake.counter) + 1
    fake.state.requests += 1
    if fake.config.burst_429 and n % fake.config.burst_429 == 0:
        raise StripeError(
            429, "Request rate limit exceeded. Retry with exponential backoff.", code="rate_limit"
        )


def _endpoint(handler: Any) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        try:
            await _guard(request)
            body = (await request.body()).decode("utf-8")
            params = parse_form(parse_qsl(request.url.query) + parse_qsl(body))
            state: StripeFakeState = request.app.state.stripe.state
            with state.lock:  # rendered under the lock: a snapshot, never half-changed
                return JSONResponse(handler(state, request, params))
        except StripeError as exc:
            return JSONResponse(exc.body, exc.status)

    return endpoint


def _list(kind: str) -> Any:
    def handler(state: StripeFakeState, request: Request, params: dict[str, Any]) -> Any:
        _check(kind, params)
        return state.page(kind, params)

    return handler


def _retrieve(kind: str) -> Any:
    def handler(state: StripeFakeState, request: Request, params: dict[str, Any]) -> Any:
        return state.retrieve(kind, request.path_params["id"])

    return handler


def _create_customer(state: StripeFakeState, request: Request, params: dict[str, Any]) -> Any:
    for name in params:
        if name not in _CUSTOMER_FIELDS:
            raise StripeError(400, f"Received unknown parameter: {name}", param=name)
    address = params.get("address") or {}
    return state.add_customer(
        name=params.get("name"),
        email=params.get("email"),
        phone=params.get("phone"),
        country=address.get("country"),
        preferred_locales=params.get("preferred_locales"),
        metadata=params.get("metadata"),
    )


def _invoice_action(state: StripeFakeState, request: Request, params: dict[str, Any]) -> Any:
    return state.act(request.path_params["id"], request.path_params["action"])


def _delete_invoice(state: StripeFakeState, request: Request, params: dict[str, Any]) -> Any:
    return state.delete_invoice(request.path_params["id"])


def create_stripe_app(fake: StripeFake) -> Starlette:
    """The ASGI app of the fake Stripe for ``fake``."""
    routes = [
        Route("/v1/customers", _endpoint(_list("customers")), methods=["GET"]),
        Route("/v1/customers", _endpoint(_create_customer), methods=["POST"]),
        Route("/v1/customers/{id}", _endpoint(_retrieve("customers")), methods=["GET"]),
        Route("/v1/invoices", _endpoint(_list("invoices")), methods=["GET"]),
        Route("/v1/invoices/{id}", _endpoint(_retrieve("invoices")), methods=["GET"]),
        Route("/v1/invoices/{id}", _endpoint(_delete_invoice), methods=["DELETE"]),
        Route("/v1/invoices/{id}/{action}", _endpoint(_invoice_action), methods=["POST"]),
        Route("/v1/events", _endpoint(_list("events")), methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.stripe = fake
    return app


@contextlib.contextmanager
def run_stripe_fake(
    config: StripeFakeConfig | None = None, state: StripeFakeState | None = None
) -> Iterator[StripeFake]:
    """A fake Stripe served on a free 127.0.0.1 port in a background thread."""
    from dunning.devtools.fakes.server import serve_in_thread

    fake = StripeFake("", state or StripeFakeState(), config or StripeFakeConfig())
    fake.counter = itertools.count()
    with serve_in_thread(create_stripe_app(fake), "dunning-fake-stripe") as base_url:
        fake.base_url = base_url
        yield fake

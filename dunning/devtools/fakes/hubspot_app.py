"""A stateful fake HubSpot speaking the CRM v3 REST paths the ``hubspot-api-client`` SDK calls,
for tests and demos (docs/outbound.md).

- ``POST /crm/v3/objects/contacts/search``: ``filterGroups`` with ``email EQ value``
  (case-insensitive, as HubSpot compares e-mail addresses); answers ``{"total", "results"}``.
- ``POST /crm/v3/objects/notes``: ``properties`` (``hs_timestamp`` required) and
  ``associations`` (``to.id`` must be a contact, ``types`` HUBSPOT_DEFINED 202); answers the
  note (201).
- ``POST /oauth/v1/token``: ``grant_type=refresh_token`` with the app's client id and secret.
- ``Authorization: Bearer`` on every CRM request: the private app token, or an access token
  the token endpoint issued. Faults (knobs of :class:`HubSpotFakeConfig`): every
  ``burst_429``-th CRM request is answered 429 as HubSpot's burst limit is (``errorType
  RATE_LIMIT``, ``policyName TEN_SECONDLY_ROLLING``, the ``X-HubSpot-RateLimit-*`` headers);
  :meth:`HubSpotFake.expire_tokens` makes every issued access token answer 401
  ``EXPIRED_AUTHENTICATION`` until a refresh.
- ``GET /_fake/hubspot/notes``: every note held, for assertions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

NOTE_TO_CONTACT = 202


@dataclass
class HubSpotFakeConfig:
    """Knobs: the private app token, the OAuth app, rate limiting."""

    private_token: str = "pat-na1-fake-private-app-token"  # noqa: S105 - the fake's own value
    client_id: str = "fake-hubspot-client-id"
    client_secret: str = "fake-hubspot-client-secret"  # noqa: S105 - the fake's own value
    burst_429: int = 0  # every Nth CRM request is answered 429 (0 = never)
    interval_ms: int = 100  # X-HubSpot-RateLimit-Interval-Milliseconds of a 429


@dataclass
class HubSpotFake:
    """A running fake HubSpot: base URL, knobs, contacts, notes and tokens."""

    base_url: str
    config: HubSpotFakeConfig
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access_tokens: set[str] = field(default_factory=set)
    refresh_token: str = field(default_factory=lambda: "rt-" + secrets.token_hex(8))
    counter: Any = field(default_factory=itertools.count)
    answered: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_contact(self, email: str) -> str:
        """A contact with ``email``; its id."""
        cid = str(100 + len(self.contacts) + 1)
        self.contacts[cid] = {"email": email}
        return cid

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (401 EXPIRED_AUTHENTICATION)."""
        self.access_tokens.clear()

    def reset(self) -> None:
        """Forget contacts, notes, counters and issued tokens."""
        self.contacts.clear()
        self.notes.clear()
        self.access_tokens.clear()
        self.answered.clear()
        self.counter = itertools.count()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _object(oid: str, properties: dict[str, Any]) -> dict[str, Any]:
    now = _now()
    return {
        "id": oid,
        "properties": properties,
        "createdAt": now,
        "updatedAt": now,
        "archived": False,
    }


def _error(status: int, message: str, category: str, **extra: Any) -> JSONResponse:
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return JSONResponse(body, status)


def _guard(request: Request) -> JSONResponse | None:
    """Authentication and rate limiting of one CRM request (None: go on)."""
    fake: HubSpotFake = request.app.state.hubspot
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return _error(401, "Authentication credentials not found.", "INVALID_AUTHENTICATION")
    if token != fake.config.private_token and token not in fake.access_tokens:
        return _error(
            401,
            "The OAuth token used to make this call expired 1 second(s) ago.",
            "EXPIRED_AUTHENTICATION",
        )
    n = next(fake.counter) + 1
    if fake.config.burst_429 and n % fake.config.burst_429 == 0:
        response = _error(
            429,
            "You have reached your ten_secondly_rolling limit.",
            "RATE_LIMITS",
            errorType="RATE_LIMIT",
            policyName="TEN_SECONDLY_ROLLING",
        )
        response.headers.update(
            {
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(fake.config.interval_ms),
                "X-HubSpot-RateLimit-Max": "100",
                "X-HubSpot-RateLimit-Remaining": "0",
            }
        )
        fake.answered.append(429)
        return response
    return None


async def _search(request: Request) -> JSONResponse:
    fake: HubSpotFake = request.app.state.hubspot
    refused = _guard(request)
    if refused:
        return refused
    body = await request.json()
    wanted: str | None = None
    for group in body.get("filterGroups") or []:
        for f in group.get("filters") or []:
            if f.get("propertyName") == "email" and f.get("operator") == "EQ":
                wanted = str(f.get("value") or "")
    if wanted is None:
        return _error(400, "the fake searches contacts by email EQ only", "VALIDATION_ERROR")
    with fake.lock:
        found = [
            _object(cid, {"email": c["email"], "hs_object_id": cid})
            for cid, c in fake.contacts.items()
            if c["email"].lower() == wanted.lower()
        ][: int(body.get("limit") or 10)]
    fake.answered.append(200)
    return JSONResponse({"total": len(found), "results": found})


async def _create_note(request: Request) -> JSONResponse:
    fake: HubSpotFake = request.app.state.hubspot
    refused = _guard(request)
    if refused:
        return refused
    body = await request.json()
    properties = dict(body.get("properties") or {})
    if not properties.get("hs_timestamp"):
        return _error(
            400, "Property values were not valid: hs_timestamp is required", "VALIDATION_ERROR"
        )
    associations = body.get("associations") or []
    with fake.lock:
        for a in associations:
            to = str((a.get("to") or {}).get("id"))
            types = a.get("types") or []
            if to not in fake.contacts or not any(
                t.get("associationCategory") == "HUBSPOT_DEFINED"
                and t.get("associationTypeId") == NOTE_TO_CONTACT
                for t in types
            ):
                return _error(
                    400,
                    f"association to {to} is not a note-to-contact association of a contact",
                    "VALIDATION_ERROR",
                )
        nid = str(9000 + len(fake.notes) + 1)
        fake.notes[nid] = {
            "properties": properties,
            "contacts": [str(a["to"]["id"]) for a in associations],
        }
    fake.answered.append(201)
    return JSONResponse(_object(nid, properties), 201)


async def _token(request: Request) -> JSONResponse:
    fake: HubSpotFake = request.app.state.hubspot
    form = dict(parse_qsl((await request.body()).decode("utf-8")))
    if (form.get("client_id"), form.get("client_secret")) != (
        fake.config.client_id,
        fake.config.client_secret,
    ):
        return JSONResponse(
            {"status": "BAD_CLIENT_ID", "message": "missing or unknown client"}, 400
        )
    if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != fake.refresh_token:
        return JSONResponse({"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown"}, 400)
    token = "at-" + secrets.token_hex(12)
    fake.access_tokens.add(token)
    return JSONResponse(
        {
            "access_token": token,
            "refresh_token": fake.refresh_token,
            "token_type": "bearer",
            "expires_in": 1800,
        }
    )


async def _notes(request: Request) -> JSONResponse:
    fake: HubSpotFake = request.app.state.hubspot
    with fake.lock:
        return JSONResponse(fake.notes)


def create_hubspot_app(fake: HubSpotFake) -> Starlette:
    """The ASGI app of the fake HubSpot for ``fake``."""
    app = Starlette(
        routes=[
            Route("/crm/v3/objects/contacts/search", _search, methods=["POST"]),
            Route("/crm/v3/objects/notes", _create_note, methods=["POST"]),
            Route("/oauth/v1/token", _token, methods=["POST"]),
            Route("/_fake/hubspot/notes", _notes, methods=["GET"]),
        ]
    )
    app.state.hubspot = fake
    return app


@contextlib.contextmanager
def run_hubspot_fake(config: HubSpotFakeConfig | None = None) -> Iterator[HubSpotFake]:
    """A fake HubSpot served on a free 127.0.0.1 port in a background thread."""
    from dunning.devtools.fakes.server import serve_in_thread

    fake = HubSpotFake("", config or HubSpotFakeConfig())
    with serve_in_thread(create_hubspot_app(fake), "dunning-fake-hubspot") as base_url:
        fake.base_url = base_url
        yield fake

"""One ASGI app serving both fakes (Twilio under /2010-04-01, SendGrid under /v3) plus admin routes,
and ``run_fakes``: the app on a free 127.0.0.1 port in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dunning.devtools.fakes import sendgrid, twilio, twilio_app, twilio_calls
from dunning.devtools.fakes.config import FakeConfig
from dunning.devtools.fakes.context import FakeContext
from dunning.devtools.fakes.state import FakeState, Received
from dunning.errors import ConfigError

#: Paths of the dunning webhook receiver (dunning.webhooks.app) the fakes post to by default.
WEBHOOK_PATHS = {
    "sendgrid_events": "/webhooks/sendgrid/events",
    "twilio_inbound": "/webhooks/twilio/inbound",
    "twilio_status": "/webhooks/twilio/status",
    "twilio_voice": "/webhooks/twilio/voice",
}


async def _messages(request: Request) -> JSONResponse:
    """GET /_fake/messages: everything accepted, counted, and the callbacks posted."""
    ctx: FakeContext = request.app.state.fakes
    return JSONResponse(ctx.state.snapshot())


async def _reset(request: Request) -> JSONResponse:
    """POST /_fake/reset: forget everything and restart the fault counters."""
    ctx: FakeContext = request.app.state.fakes
    ctx.state.reset()
    ctx.faults.reset()
    return JSONResponse({"reset": True})


async def _inbound(request: Request) -> JSONResponse:
    """POST /_fake/twilio/inbound (JSON or form: From, To, Body[, Url]): post an inbound SMS."""
    ctx: FakeContext = request.app.state.fakes
    raw = (await request.body()).decode("utf-8", "replace")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            fields = json.loads(raw)
        except ValueError:
            fields = None
    else:
        fields = dict(parse_qsl(raw))
    if not isinstance(fields, dict) or not all(
        isinstance(fields.get(k), str) for k in ("From", "To", "Body")
    ):
        return JSONResponse(
            {"error": "give From, To and Body (strings) as JSON or form fields"}, 400
        )
    url = fields.get("Url") or ctx.config.twilio_inbound_url
    if not url:
        return JSONResponse({"error": "no Url given and the fake has no twilio_inbound_url"}, 400)
    params = twilio_app.record_inbound(ctx, fields["From"], fields["To"], fields["Body"])
    status = await ctx.post(
        "twilio_inbound",
        url,
        form=params,
        headers=twilio.sign(ctx.config.twilio_auth_token, url, params),
    )
    return JSONResponse({"MessageSid": params["MessageSid"], "receiver_status": status})


async def _info(request: Request) -> JSONResponse:
    """GET /_fake/info: the public facts a client needs (account sid, event verification key)."""
    ctx: FakeContext = request.app.state.fakes
    return JSONResponse(
        {
            "twilio_account_sid": ctx.config.twilio_account_sid,
            "sendgrid_public_key": sendgrid.public_key_b64(ctx.config.seed),
        }
    )


def create_app(ctx: FakeContext) -> Starlette:
    """The ASGI app serving both providers and the /_fake admin routes from ``ctx``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await ctx.start()
        try:
            yield
        finally:
            await ctx.stop()

    admin = [
        Route("/_fake/messages", _messages, methods=["GET"]),
        Route("/_fake/reset", _reset, methods=["POST"]),
        Route("/_fake/info", _info, methods=["GET"]),
        Route("/_fake/twilio/inbound", _inbound, methods=["POST"]),
    ]
    app = Starlette(
        routes=twilio_app.routes + twilio_calls.routes + sendgrid.routes + admin, lifespan=lifespan
    )
    app.state.fakes = ctx
    return app


def env_for(base_url: str, ctx: FakeContext) -> dict[str, str]:
    """The DUNNING_* variables that point dunning's channels and webhook receiver at the fakes."""
    return {
        "DUNNING_TWILIO_BASE_URL": base_url,
        "DUNNING_TWILIO_ACCOUNT_SID": ctx.config.twilio_account_sid,
        "DUNNING_TWILIO_AUTH_TOKEN": ctx.config.twilio_auth_token,
        "DUNNING_TWILIO_FROM_NUMBER": twilio.FALLBACK_FROM,
        "DUNNING_SENDGRID_BASE_URL": base_url,
        "DUNNING_SENDGRID_API_KEY": ctx.config.sendgrid_api_key,
        "DUNNING_SENDGRID_WEBHOOK_PUBLIC_KEY": sendgrid.public_key_b64(ctx.config.seed),
        # A run sending real-looking e-mail refuses the development unsubscribe defaults; the
        # fakes stand for real providers, so they come with a local secret and receiver URL.
        "DUNNING_UNSUBSCRIBE_SECRET": f"fake-unsubscribe-{ctx.config.seed}",
        "DUNNING_UNSUBSCRIBE_BASE_URL": "http://127.0.0.1:8080/unsubscribe",
    }


@dataclass
class RunningFakes:
    """Handle on fakes running in this process: address, credentials, state."""

    base_url: str
    context: FakeContext

    @property
    def config(self) -> FakeConfig:
        """The knobs in force (credentials filled in)."""
        return self.context.config

    @property
    def state(self) -> FakeState:
        """What the fakes accepted (``state.messages``) and the callbacks they posted."""
        return self.context.state

    @property
    def twilio_account_sid(self) -> str:
        """The AccountSid the Twilio fake accepts."""
        return self.config.twilio_account_sid

    @property
    def twilio_auth_token(self) -> str:
        """The AuthToken the Twilio fake accepts and signs callbacks with."""
        return self.config.twilio_auth_token

    @property
    def sendgrid_api_key(self) -> str:
        """The API key the SendGrid fake accepts."""
        return self.config.sendgrid_api_key

    @property
    def sendgrid_public_key(self) -> str:
        """The Event Webhook verification key, base64 DER as SendGrid shows it."""
        return sendgrid.public_key_b64(self.config.seed)

    def env(self) -> dict[str, str]:
        """The DUNNING_* variables pointing dunning at these fakes."""
        return env_for(self.base_url, self.context)

    def received(self, provider: str | None = None) -> list[Received]:
        """The accepted messages, oldest first, optionally of one provider (twilio | sendgrid)."""
        return self.state.received(provider)

    def send_inbound_sms(
        self, from_: str, to: str, body: str, url: str | None = None
    ) -> int | None:
        """The receiver's status after posting a signed inbound SMS (None: unreachable)."""
        target = url or self.config.twilio_inbound_url
        if not target:
            raise ValueError("no url given and the fakes were started without twilio_inbound_url")
        params = twilio_app.record_inbound(self.context, from_, to, body)
        return self.context.post_sync(
            "twilio_inbound",
            target,
            form=params,
            headers=twilio.sign(self.twilio_auth_token, target, params),
        )

    def calls(self) -> list[dict[str, Any]]:
        """Every call placed, oldest first, with its transcript (``_transcript``: fetches,
        what was said, digits pressed, numbers dialled)."""
        return list(reversed(self.state.twilio_call_list()))

    def reset(self) -> None:
        """Forget everything accepted and restart the fault counters."""
        self.state.reset()
        self.context.faults.reset()


def _server(app: Any, **options: Any) -> uvicorn.Server:
    # Why the short graceful timeout: hanging requests (timeout_rate) must not hold up shutdown.
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1, **options
    )
    return uvicorn.Server(config)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0 = a free port); ConfigError when taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Why TCP_NODELAY here: uvicorn serving a socket it did not create leaves Nagle on for
    # the accepted connections (asyncio only sets it for sockets with proto TCP, and uvicorn's
    # fromfd copy has proto 0), so every response waited for the client's delayed ACK: 40 ms
    # on top of the configured latency. Accepted sockets inherit the option on Linux.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        # Listening now lets clients connect (and queue) before uvicorn has started up.
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror}); pick a free port with --port"
        ) from None
    return sock


@contextlib.contextmanager
def serve_in_thread(app: Any, name: str, **options: Any) -> Iterator[str]:
    """The base URL of ``app`` served by uvicorn on a free 127.0.0.1 port in a background
    thread named ``name``, until the block ends. ``options`` go to uvicorn's Config (e.g.
    ``ssl_certfile`` and ``ssl_keyfile``: the URL is then https)."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = _server(app, **options)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            sock.close()
            raise RuntimeError("the fake server stopped while starting; see the log above")
        threading.Event().wait(0.01)
    try:
        scheme = "https" if options.get("ssl_certfile") else "http"
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.contextmanager
def run_fakes(config: FakeConfig | None = None, **knobs: Any) -> Iterator[RunningFakes]:
    """A handle on both fakes served by uvicorn on a free 127.0.0.1 port in a background thread.

    Give a ``FakeConfig`` or its fields as keywords, e.g. ``run_fakes(latency_ms=0, seed=1)``.
    """
    ctx = FakeContext.create(FakeConfig(**knobs) if config is None else config)
    with serve_in_thread(create_app(ctx), "dunning-fakes") as base_url:
        yield RunningFakes(base_url, ctx)


def serve(ctx: FakeContext, sock: socket.socket) -> None:
    """Serve both fakes from ``ctx`` on ``sock`` in the foreground until interrupted."""
    asyncio.run(_server(create_app(ctx)).serve(sockets=[sock]))

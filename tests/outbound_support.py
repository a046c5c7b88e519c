"""A real Standard Webhooks receiver for outbound event tests: a Starlette app under uvicorn
on a free loopback port that verifies every request with the ``standardwebhooks`` package."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SECRET = "whsec_" + base64.b64encode(b"outbound-test-secret-32-bytes!!!").decode()


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Receiver:
    """What the receiver saw: verified events, every attempt's headers, rejected requests."""

    port: int
    status: int = 200
    verified: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, str]] = field(default_factory=list)
    rejected: int = 0

    @property
    def url(self) -> str:
        """The receiver's loopback URL."""
        return f"http://127.0.0.1:{self.port}/hook"

    def types(self) -> list[str]:
        """The types of the verified events, in arrival order."""
        return [e["type"] for e in self.verified]


def _app(rx: Receiver) -> Starlette:
    hook = Webhook(SECRET)

    async def receive(request: Request) -> Response:
        body = await request.body()
        headers = {
            k: request.headers.get(k, "")
            for k in ("webhook-id", "webhook-timestamp", "webhook-signature")
        }
        rx.attempts.append(headers)
        try:
            payload = hook.verify(body, dict(request.headers))
        except WebhookVerificationError:
            rx.rejected += 1
            return Response(status_code=400)
        if rx.status == 200:
            assert payload["id"] == headers["webhook-id"]
            rx.verified.append(json.loads(body))
        return Response(status_code=rx.status)

    return Starlette(routes=[Route("/hook", receive, methods=["POST"])])


@contextmanager
def receiver(rx: Receiver) -> Iterator[Receiver]:
    """Serve ``rx`` on its port until the block ends (bounded start-up wait)."""
    server = uvicorn.Server(
        uvicorn.Config(
            _app(rx), host="127.0.0.1", port=rx.port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "receiver did not start"
        assert thread.is_alive(), "receiver thread died"
        time.sleep(0.02)
    try:
        yield rx
    finally:
        server.should_exit = True
        thread.join(timeout=10)

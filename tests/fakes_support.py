"""Test helpers for the fakes: a webhook receiver on 127.0.0.1 and SDK clients pointed at a fake."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from sendgrid import SendGridAPIClient
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

WAIT_S = 10.0  # upper bound for a callback to arrive; a healthy run takes milliseconds


@dataclass
class Hook:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """Records every POST; answers ``status``."""

    def __init__(self) -> None:
        self.hooks: queue.Queue[Hook] = queue.Queue()
        self.base_url = ""
        self.status = 200

    def url(self, path: str) -> str:
        return self.base_url + path

    def next(self) -> Hook:
        return self.hooks.get(timeout=WAIT_S)

    def take(self, n: int) -> list[Hook]:
        return [self.next() for _ in range(n)]


@contextmanager
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            rec.hooks.put(Hook(self.path, dict(self.headers.items()), body))
            self.send_response(rec.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


class Fakes(Protocol):
    """What a client needs of running fakes (RunningFakes, or a served process's env)."""

    @property
    def base_url(self) -> str: ...
    @property
    def twilio_account_sid(self) -> str: ...
    @property
    def twilio_auth_token(self) -> str: ...
    @property
    def sendgrid_api_key(self) -> str: ...


def twilio_client(fakes: Fakes, token: str | None = None, timeout: float | None = None) -> Client:
    """The official Client aimed at the fake through the SDK's own Domain.base_url."""
    client = Client(
        fakes.twilio_account_sid,
        token or fakes.twilio_auth_token,
        http_client=TwilioHttpClient(timeout=timeout),
    )
    # Every v2010 URL (also next_page_uri) is built from this Domain's base_url.
    client.api.base_url = fakes.base_url
    return client


def sendgrid_client(fakes: Fakes, key: str | None = None) -> SendGridAPIClient:
    return SendGridAPIClient(key or fakes.sendgrid_api_key, host=fakes.base_url)

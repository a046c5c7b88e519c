"""A scripted HTTP provider on 127.0.0.1 for channel tests: real sockets, real SDK requests.

Each request gets the next scripted response (the last one repeats) and is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Scripted:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to hang before answering (timeout tests)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class StubProvider:
    def __init__(self, script: list[Scripted]) -> None:
        self.script = list(script)
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self.base_url = ""

    def next_response(self, rec: Recorded) -> Scripted:
        with self._lock:
            self.requests.append(rec)
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]


def _handler(stub: StubProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            rec = Recorded(self.command, self.path, dict(self.headers.items()), body)
            reply = stub.next_response(rec)
            if reply.delay:
                time.sleep(reply.delay)
            payload = (
                b""
                if reply.body is None
                else (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                )
            )
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (timeout test)

        do_POST = do_GET = _serve

    return Handler


@contextmanager
def stub_provider(*script: Scripted) -> Iterator[StubProvider]:
    """A running StubProvider answering with ``script``."""
    stub = StubProvider(list(script))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.daemon_threads = True
    server.block_on_close = False  # a hanging handler must not hold up the test
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

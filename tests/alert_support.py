"""A real HTTP receiver for operator alerts: what Prefect's webhook notification block posts."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class AlertInbox:
    """The JSON bodies posted to ``url`` (thread-safe list), in arrival order."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/operator"
        self._lock = threading.Lock()
        self._received: list[dict[str, Any]] = []

    def add(self, body: dict[str, Any]) -> None:
        with self._lock:
            self._received.append(body)

    @property
    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._received)

    def mentioning(self, marker: str) -> list[dict[str, Any]]:
        """The alerts whose subject or body contains ``marker``."""
        return [m for m in self.received if marker in str(m)]

    def wait_for(
        self,
        marker: str,
        retrigger: Callable[[], None] | None = None,
        attempts: int = 60,
        pause: float = 0.5,
    ) -> list[dict[str, Any]]:
        """The alerts mentioning ``marker``, waiting up to ``attempts`` × ``pause`` seconds;
        ``retrigger`` runs every tenth attempt, because the server's triggers service picks
        up new automations only on its next refresh."""
        for attempt in range(attempts):
            if retrigger is not None and attempt % 10 == 0:
                retrigger()
            found = self.mentioning(marker)
            if found:
                return found
            time.sleep(pause)
        return []


@contextlib.contextmanager
def alert_inbox() -> Iterator[AlertInbox]:
    """A webhook receiver on a free port of 127.0.0.1, stopped when the block exits."""
    holder: dict[str, AlertInbox] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            holder["inbox"].add(json.loads(body or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["inbox"] = AlertInbox(server.server_port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield holder["inbox"]
    finally:
        server.shutdown()
        server.server_close()

"""`make ui`'s server: a persistent local Prefect server with its UI, found again if running."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from dunning.prefect_ui import ensure_server

pytestmark = pytest.mark.slow


def test_the_ui_server_starts_in_the_background_and_is_reused(tmp_path: Path):
    api, pid = ensure_server(tmp_path / "ui")
    try:
        assert api.startswith("http://127.0.0.1:") and api.endswith("/api")
        assert httpx.get(f"{api}/health", timeout=5).status_code == 200
        assert httpx.get(api.removesuffix("/api"), timeout=10).status_code == 200  # the UI
        again = ensure_server(tmp_path / "ui")
        assert again == (api, pid)  # the running server is found again, not a second one
        assert (tmp_path / "ui" / "server.url").read_text().split() == [api, str(pid)]
    finally:
        os.killpg(pid, signal.SIGTERM)

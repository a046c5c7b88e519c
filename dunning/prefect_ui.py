"""A persistent local Prefect server with its UI, for trying dunning: ``make ui``.

``python -m dunning.prefect_ui [HOME]`` starts ``prefect server start`` in the background on a
free port (PREFECT_HOME under HOME, default .dunning/prefect-ui, so runs are kept across
restarts), waits until it is healthy and prints ``PREFECT_API_URL=...`` on stdout. If the server
it started before still answers, it is reused. Stop it with the ``kill`` command it prints.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import httpx

from dunning.prefect_setup import start_server

DEFAULT_HOME = Path(".dunning") / "prefect-ui"


def _healthy(api: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    return False


def ensure_server(home: Path = DEFAULT_HOME, timeout: float = 120.0) -> tuple[str, int]:
    """(API URL, server pid) of the UI server under ``home``, started unless already running.

    Raises RuntimeError naming the log file when the server does not become healthy.
    """
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    state = home / "server.url"
    if state.is_file():
        api, _, pid = state.read_text().strip().partition(" ")
        if _healthy(api):
            return api, int(pid)
    # left running on purpose: the UI outlives this command
    proc, env = start_server(home, ui=True, log_mode="ab")
    api = env["PREFECT_API_URL"]
    deadline = time.monotonic() + timeout
    while not _healthy(api):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the Prefect server did not start; see {home / 'server.log'}")
        time.sleep(0.5)
    state.write_text(f"{api} {proc.pid}\n")
    return api, proc.pid


def main(argv: list[str] | None = None) -> None:
    """Start (or find) the UI server and print its API URL for the shell."""
    args = sys.argv[1:] if argv is None else argv
    home = Path(args[0]) if args else DEFAULT_HOME
    try:
        api, pid = ensure_server(home)
    except RuntimeError as exc:
        raise SystemExit(f"error: {exc}") from None
    ui = api.removesuffix("/api")
    print(f"PREFECT_API_URL={api}")
    print(f"Prefect UI: {ui}  (server pid {pid}; stop it: kill {pid})", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Voice test rig: the fake Twilio and the real webhook receiver over real HTTP, with the
environment pointing dunning's channels at both."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine, select

from dunning.config import WebhookSettings, reload_settings
from dunning.db import session_scope
from dunning.db.models import WebhookInbox
from dunning.devtools.fakes.server import RunningFakes, run_fakes
from dunning.webhooks import create_app

SUPPORT = "+493012345678"
WAIT_S = 30.0  # upper bound for calls to end and report; a healthy run takes well under 1 s


@dataclass
class Rig:
    fakes: RunningFakes
    receiver_url: str


def _free_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def voice_rig(engine: Engine, monkeypatch: pytest.MonkeyPatch, **knobs: Any) -> Iterator[Rig]:
    """Fakes (``knobs`` as for run_fakes) and the receiver on free ports; the DUNNING_*
    environment points the channels at the fakes and calls at the receiver."""
    url = _free_url()
    with run_fakes(seed=21, **knobs) as fakes:
        for key, value in fakes.env().items():
            monkeypatch.setenv(key, value)
            reload_settings()
        monkeypatch.setenv("DUNNING_WEBHOOK_PUBLIC_URL", url)
        monkeypatch.setenv("DUNNING_VOICE_SUPPORT_NUMBER", SUPPORT)
        reload_settings()
        # The receiver reads Twilio's auth token where sending does: the DUNNING_* env above.
        settings = WebhookSettings(webhook_public_url=url)
        port = int(url.rsplit(":", 1)[1])
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + WAIT_S
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "receiver did not start"
            time.sleep(0.01)
        try:
            yield Rig(fakes, url)
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def wait_for_calls(rig: Rig, engine: Engine, count: int) -> None:
    """Until ``count`` calls ended and their status callbacks are in the inbox (bounded)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        ended = [c for c in rig.fakes.calls() if c["end_time"]]
        with session_scope(engine) as s:
            stored = s.scalars(select(WebhookInbox.event_type)).all()
        if len(ended) >= count and len([t for t in stored if t and t.startswith("call_")]) >= count:
            return
        time.sleep(0.05)
    pytest.fail(f"{count} calls did not end and report within {WAIT_S} s: {rig.fakes.calls()}")


def said(call: dict[str, Any]) -> list[str]:
    """What the fake heard a call say, in order."""
    return [entry[2] for entry in call["_transcript"] if entry[0] == "say"]


def climb(engine: Engine, invoice_id: int, customer_id: str, as_of: Any) -> None:
    """Ledger rows of overdue_1 and overdue_2 sent 6 and 3 days before ``as_of``: a final
    notice comes only after earlier reminders went out (docs/policy.md, ladder semantics)."""
    import datetime as dt

    from dunning.db.models import Reminder

    with session_scope(engine) as s:
        for stage, days in (("overdue_1", 6), ("overdue_2", 3)):
            when = as_of - dt.timedelta(days=days)
            s.add(
                Reminder(
                    invoice_id=invoice_id,
                    customer_id=customer_id,
                    stage=stage,
                    channel="email",
                    status="sent",
                    planned_for=when,
                    sent_at=when,
                )
            )

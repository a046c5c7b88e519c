"""The flow's task runner is sized from the ``concurrency`` parameter: a run with a
concurrency above the old fixed pool of 8 has that many delivery tasks running at once.

Real parts: the payment-reminders flow on the Prefect test server, its delivery tasks, the
SMTP channel talking to an aiosmtpd server that holds every message until ``concurrency`` of
them are being delivered at once (or a guard time passes) and counts the most it saw.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from dunning.params import MAX_CONCURRENCY
from tests.factories import add_customer, add_invoice

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

# Tuesday 24 Nov 2026, 15:00 UTC = 10:00 in New York: inside the default send window.
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
CONCURRENCY = 12  # above the 8 workers the flow's pool used to have
GUARD_S = 90.0  # how long a held message waits for the others (never reached when it works)


class HoldingInbox:
    """Holds each message in DATA until ``target`` are held at once; counts the most held."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.held = 0
        self.most = 0
        self.delivered = 0
        self._all_here: asyncio.Event | None = None

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self._all_here is None:
            self._all_here = asyncio.Event()
        self.held += 1
        self.most = max(self.most, self.held)
        if self.held >= self.target:
            self._all_here.set()
        try:
            await asyncio.wait_for(self._all_here.wait(), GUARD_S)
        except TimeoutError:
            pass
        finally:
            self.held -= 1
        self.delivered += 1
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def holding_smtpd(monkeypatch: pytest.MonkeyPatch) -> Iterator[HoldingInbox]:
    inbox = HoldingInbox(CONCURRENCY)
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    for name, value in {
        "DUNNING_EMAIL_PROVIDER": "smtp",
        "DUNNING_SMTP_HOST": "127.0.0.1",
        "DUNNING_SMTP_PORT": str(controller.port),
        "DUNNING_SMTP_STARTTLS": "false",
        "DUNNING_PROVIDER_TIMEOUT_SECONDS": str(int(GUARD_S) + 30),
        "DUNNING_UNSUBSCRIBE_SECRET": "concurrency-test-secret-" + "x" * 32,
        "DUNNING_UNSUBSCRIBE_BASE_URL": "https://hooks.test.example/unsubscribe",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield inbox
    finally:
        controller.stop()


def test_the_pool_has_room_for_the_largest_concurrency() -> None:
    from dunning.flows.payment_reminders import payment_reminders

    assert payment_reminders.task_runner._max_workers >= MAX_CONCURRENCY  # type: ignore[attr-defined]


def test_delivery_tasks_running_at_once_reach_the_concurrency_parameter(
    prefect_server, engine, holding_smtpd: HoldingInbox
) -> None:
    from dunning.flows.payment_reminders import payment_reminders

    for k in range(CONCURRENCY):
        add_customer(engine, f"C{k}", email=f"c{k}@example.com", phone=None, sms_consent=False)
        add_invoice(engine, f"INV-{k}", f"C{k}", due_on=dt.date(2026, 11, 10))

    report = payment_reminders(as_of=AS_OF, concurrency=CONCURRENCY, channels=["email"])

    assert report.counts()["sent"] == CONCURRENCY
    assert holding_smtpd.delivered == CONCURRENCY
    assert holding_smtpd.most == CONCURRENCY

"""Provider faults from the fakes (5xx, 429 bursts with Retry-After, timeouts, a provider down
for the whole run): afterwards every planned reminder is sent exactly once, ended with a
permanent reason, or left planned; an outage fails the run instead of failing reminders."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from dunning.config import reload_settings
from dunning.devtools.fakes import RunningFakes, run_fakes
from tests.reliability.support import (
    AS_OF,
    LEASE_S,
    SETTLED,
    duplicates,
    ledger_rows,
    portfolio,
    sent_matches_provider,
    statuses,
    summary,
    well_formed,
)

pytestmark = [pytest.mark.slow, pytest.mark.prefect]


def _point_at(fakes: RunningFakes, monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    """Send through ``fakes`` (overridden by ``extra``) with short timeouts and leases."""
    env = {
        **fakes.env(),
        "DUNNING_PROVIDER_TIMEOUT_SECONDS": "1",
        "DUNNING_LEASE_SECONDS": str(LEASE_S),
        **extra,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reload_settings()

    reload_settings()


def _run(batch_size: int) -> Any:
    """The final state of one reminder flow run in this process."""
    from dunning.flows.payment_reminders import payment_reminders

    return payment_reminders(as_of=AS_OF, batch_size=batch_size, return_state=True)


def _closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _faults_injected(fakes: RunningFakes) -> dict[str, int]:
    """Send requests the fakes refused, per provider, and how many requests they got."""
    # Why the private counter: the fakes count every send request there, faulty or not.
    requests = {p: fakes.context.faults._requests.get(p, 0) for p in ("sendgrid", "twilio")}
    # One accepted request per Twilio message; SendGrid accepts several recipients per request
    # (one X-Message-Id, the prefix of each recipient's id).
    accepted = {p: len({m.message_id.split(".")[0] for m in fakes.received(p)}) for p in requests}
    return {p: n - accepted[p] for p, n in requests.items()} | {
        f"{p}_requests": n for p, n in requests.items()
    }


def test_flaky_providers_end_every_reminder_sent_once_or_with_a_reason(
    prefect_server: None, engine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned = portfolio(engine, 15)
    started = time.monotonic()
    with run_fakes(
        seed=11,
        error_rate=0.2,
        burst_429=9,
        retry_after_s=1,
        timeout_rate=0.02,
        hang_s=2,
        timeout_accepts=True,
    ) as fakes:
        _point_at(fakes, monkeypatch)
        runs = []
        for _ in range(3):  # the next runs pick up what the faults left planned or claimed
            runs.append(_run(batch_size=5).type.value)
            rows = ledger_rows(engine)
            assert duplicates(fakes) == {}
            assert well_formed(rows) == []
            if not {"planned", "claimed"} & set(statuses(rows)):
                break
            time.sleep(LEASE_S + 0.5)  # let claims left by timeouts expire for reconciliation
        faults = _faults_injected(fakes)
        rows = ledger_rows(engine)
        assert len(rows) == planned
        assert duplicates(fakes) == {}
        assert sent_matches_provider(rows, fakes) == []
        assert [r for r in rows if r.status not in SETTLED] == []
        # A transient fault never ends a reminder: only a permanent reason may.
        assert not [r for r in rows if r.status == "failed_permanent"]
        assert faults["sendgrid"] + faults["twilio"] > 0  # the faults really happened
        final = statuses(rows)
        assert final.get("sent", 0) >= planned // 2, final
    summary(
        "provider faults",
        backend=engine.dialect.name,
        runs=runs,
        faults_injected=faults,
        final=final,
        duplicates=0,
        seconds=round(time.monotonic() - started, 1),
    )


def test_a_provider_down_for_the_whole_run_fails_the_run_and_fails_no_reminder(
    prefect_server: None, engine, db_url: str, fakes: RunningFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned = portfolio(engine, 4)
    down = f"http://127.0.0.1:{_closed_port()}"
    _point_at(fakes, monkeypatch, DUNNING_TWILIO_BASE_URL=down)

    state = _run(batch_size=200)

    assert state.is_failed()
    outcome = state.result(raise_on_failure=False)
    assert "delivery stopped early" in f"{state.message} {outcome!r}"
    rows = ledger_rows(engine)
    sms = [r for r in rows if r.channel == "sms"]
    assert {r.status for r in sms} == {"planned"}  # left for the next run, not failed
    assert {r.error_code for r in sms} == {"connection_error"}
    assert statuses([r for r in rows if r.channel == "email"]) == {"sent": planned // 2}
    assert fakes.received("twilio") == []

    _point_at(fakes, monkeypatch)  # Twilio is back
    assert _run(batch_size=200).is_completed()
    rows = ledger_rows(engine)
    assert statuses(rows) == {"sent": planned}
    assert duplicates(fakes) == {} and len(fakes.received()) == planned
    summary(
        "provider down",
        backend=engine.dialect.name,
        planned=planned,
        left_planned_during_outage=len(sms),
        duplicates=0,
    )

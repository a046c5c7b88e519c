"""The receiver's debounced ``dunning.webhook.received`` event, and the track-responses
deployment trigger on it (prefect.yaml) on a real Prefect server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient
from tracking_support import sendgrid_headers, sendgrid_keys, sg_event

from dunning.config import WebhookSettings
from dunning.webhooks import create_app
from dunning.webhooks.signal import INBOX_RESOURCE, WEBHOOK_EVENT, InboxSignal, prefect_emitter

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
KEY, PUBLIC_KEY = sendgrid_keys()
URL = "/webhooks/sendgrid/events"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_one_event_at_once_and_one_when_the_window_closes() -> None:
    sent: list[dict[str, Any]] = []
    clock = Clock()

    async def burst() -> None:
        signal = InboxSignal(0.2, sent.append, clock)
        signal.stored("sendgrid", 2)  # leading edge: at once
        assert sent == [{"stored": 2, "by_provider": {"sendgrid": 2}}]
        clock.now += 0.05
        signal.stored("twilio", 1)  # inside the window: held
        signal.stored("sendgrid", 3)
        signal.stored("stripe", 0)  # nothing new stored: nothing to say
        assert len(sent) == 1
        clock.now += 0.2
        await asyncio.sleep(0.5)  # trailing edge: the held counts, summed
        assert sent[1] == {"stored": 4, "by_provider": {"sendgrid": 3, "twilio": 1}}
        clock.now += 1
        signal.stored("stripe", 1)  # a new window: at once again
        assert sent[2] == {"stored": 1, "by_provider": {"stripe": 1}}

    asyncio.run(burst())
    assert len(sent) == 3


def test_the_receiver_signals_stored_events_only_and_survives_a_failing_emitter(
    engine: Engine,
) -> None:
    sent: list[dict[str, Any]] = []
    settings = WebhookSettings(sendgrid_webhook_public_key=PUBLIC_KEY)
    body = json.dumps([sg_event("delivered", "e1", 1), sg_event("open", "e2", 1)]).encode()
    with TestClient(create_app(settings, engine, signal=InboxSignal(0, sent.append))) as client:
        assert (
            client.post(URL, content=body, headers=sendgrid_headers(KEY, body)).json()["stored"]
            == 2
        )
        # A replay stores nothing new, so there is nothing to signal.
        client.post(URL, content=body, headers=sendgrid_headers(KEY, body))
    assert sent == [{"stored": 2, "by_provider": {"sendgrid": 2}}]
    # Counts only: no event ids, addresses or bodies.
    assert "e1" not in json.dumps(sent) and "@" not in json.dumps(sent)

    def broken(payload: dict[str, Any]) -> None:
        raise httpx.ConnectError("prefect is down")

    body = json.dumps([sg_event("delivered", "e3", 1)]).encode()
    with TestClient(create_app(settings, engine, signal=InboxSignal(0, broken))) as client:
        answer = client.post(URL, content=body, headers=sendgrid_headers(KEY, body))
    assert answer.status_code == 200 and answer.json()["stored"] == 1


def test_the_receiver_signals_only_when_a_prefect_api_is_configured() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from dunning.webhooks import signal

    # Without an API, Prefect's client would start an ephemeral server inside the receiver.
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert not signal.prefect_configured()
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        assert signal.prefect_configured()


def _api(method: str, path: str, body: Any = None) -> Any:
    from prefect.settings import PREFECT_API_URL

    response = httpx.request(method, f"{PREFECT_API_URL.value()}{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


@pytest.mark.prefect
def test_a_webhook_triggers_a_track_responses_run_through_the_deployment_trigger(
    prefect_server, engine: Engine, tmp_path: Path
) -> None:
    import os

    from prefect.settings import PREFECT_API_URL

    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
    }
    for cmd in (
        ["work-pool", "create", "dunning", "--type", "process", "--overwrite"],
        ["--no-prompt", "deploy", "--name", "track-responses"],
    ):
        done = subprocess.run(
            [str(BIN / "prefect"), *cmd],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    deployment = _api("GET", "/deployments/name/track-responses/track-responses")
    # prefect.yaml's shared work-pool definition: heartbeats for the zombie guard.
    assert deployment["job_variables"]["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "60"

    triggers = _api("POST", "/automations/filter", {})
    mine = [
        a
        for a in triggers
        if WEBHOOK_EVENT in a["trigger"].get("expect", [])
        and a["actions"][0].get("deployment_id") == deployment["id"]
    ]
    assert len(mine) == 1, triggers
    assert mine[0]["actions"][0]["type"] == "run-deployment"

    def runs() -> list[dict[str, Any]]:
        return _api(
            "POST",
            "/flow_runs/filter",
            {"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}},
        )

    # Both database backends run this test against the one session server: only runs
    # created now count.
    before = {r["id"] for r in runs()}
    settings = WebhookSettings(sendgrid_webhook_public_key=PUBLIC_KEY, webhook_event_seconds=0)
    app = create_app(settings, engine, signal=InboxSignal(0, prefect_emitter))
    started: list[dict[str, Any]] = []
    with TestClient(app) as client:
        # The server's trigger service loads a new automation on its next refresh, so the
        # webhook is repeated (new events each time) until a run appears.
        for attempt in range(80):
            if attempt % 10 == 0:
                body = json.dumps([sg_event("delivered", f"ev-{uuid.uuid4()}", 1)]).encode()
                assert (
                    client.post(URL, content=body, headers=sendgrid_headers(KEY, body)).json()[
                        "stored"
                    ]
                    == 1
                )
            started = [r for r in runs() if r["id"] not in before]
            if started:
                break
            time.sleep(0.5)
    assert started, "no track-responses run was created by the webhook event"
    assert started[0]["state"]["type"] == "SCHEDULED"
    # The event store is written by a batching service, a little after the trigger saw it.
    stored: list[dict[str, Any]] = []
    for _ in range(40):
        stored = _api(
            "POST",
            "/events/filter",
            {"filter": {"event": {"name": [WEBHOOK_EVENT]}, "resource": {"id": [INBOX_RESOURCE]}}},
        )["events"]
        if stored:
            break
        time.sleep(0.5)
    assert stored, "the receiver's event was not stored by the server"
    assert set(stored[0]["payload"]) == {"stored", "by_provider"}

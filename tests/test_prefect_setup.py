"""``dunning setup-prefect`` against the real Prefect test server."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alert_support import AlertInbox, alert_inbox
from prefect.client.orchestration import get_client
from typer.testing import CliRunner

import dunning.cli.prefect_setup  # noqa: F401  (registers the command)
from dunning.alerts import (
    FAILURE_RATE_AUTOMATION,
    FAILURE_RATE_EVENT,
    LATE_AUTOMATION,
    NO_COMPLETED_AUTOMATION,
    PENDING_AUTOMATION,
    REMINDER_FLOW,
    RUN_FAILED_AUTOMATION,
    SLOT_WAIT_AUTOMATION,
    TRACKING_FLOW,
    WATCHED_FLOWS,
    ZOMBIE_AUTOMATION,
    run_failed_automation,
)
from dunning.cli.app import app
from dunning.config import reload_settings
from dunning.prefect_setup import OPERATOR_BLOCK, WORK_POOL

pytestmark = pytest.mark.prefect
runner = CliRunner()
HOOK = "http://127.0.0.1:9/hooks/T000/B000/secret-token"


async def _server_state() -> tuple[Any, dict[str, list[Any]], Any]:
    async with get_client() as client:
        pool = await client.read_work_pool(WORK_POOL)
        autos = {
            name: await client.read_automations_by_name(name)
            for name in (
                *map(run_failed_automation, WATCHED_FLOWS),
                FAILURE_RATE_AUTOMATION,
                ZOMBIE_AUTOMATION,
                PENDING_AUTOMATION,
                SLOT_WAIT_AUTOMATION,
                LATE_AUTOMATION,
                NO_COMPLETED_AUTOMATION,
            )
        }
        block = await client.read_block_document_by_name(OPERATOR_BLOCK, "custom-webhook")
    return pool, autos, block


def test_setup_creates_pool_block_and_automations_once_when_run_twice(
    prefect_server, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DUNNING_ALERT_WEBHOOK_URL", HOOK)
    reload_settings()
    first = runner.invoke(app, ["setup-prefect", "--json"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["setup-prefect", "--json"])
    assert second.exit_code == 0, second.output
    # the webhook URL carries a token: it never reaches the output
    assert "secret-token" not in first.output + second.output

    again = json.loads(second.stdout)
    assert again["work_pool"] == {"name": "dunning", "type": "process", "status": "exists"}
    assert {a["status"] for a in again["automations"]} == {"updated"}
    assert again["block"]["ref"] == f"custom-webhook/{OPERATOR_BLOCK}"

    pool, autos, block = asyncio.run(_server_state())
    assert pool.type == "process"
    assert pool.base_job_template["job_configuration"]
    assert all(len(found) == 1 for found in autos.values()), autos
    failed = autos[RUN_FAILED_AUTOMATION][0]
    assert failed.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    related = failed.trigger.match_related
    spec = related[0] if isinstance(related, list) else related
    assert spec.model_dump() == {
        "prefect.resource.role": "flow",
        "prefect.resource.name": [REMINDER_FLOW],
    }
    rate = autos[FAILURE_RATE_AUTOMATION][0]
    assert rate.trigger.expect == {FAILURE_RATE_EVENT}
    for auto in (failed, rate):
        assert auto.enabled
        assert [a.type for a in auto.actions] == ["send-notification"]
        assert auto.actions[0].block_document_id == block.id
    # the URL is stored as a block secret, the visible url field is only a template
    assert block.data["url"] == "{{webhook_url}}"

    # Zombie guard: a flow run of ours silent for DUNNING_ALERT_ZOMBIE_SECONDS after a
    # heartbeat is set to Crashed (Prefect's documented zombie-flow automation).
    zombie = autos[ZOMBIE_AUTOMATION][0].trigger
    assert zombie.posture == "Proactive"
    assert zombie.after == {"prefect.flow-run.heartbeat"}
    assert zombie.expect == {"prefect.flow-run.*"}
    assert zombie.for_each == {"prefect.resource.id"}
    assert zombie.within.total_seconds() == 600
    [crash] = autos[ZOMBIE_AUTOMATION][0].actions
    assert (crash.type, crash.state) == ("change-flow-run-state", "CRASHED")
    stalled = {name: autos[name][0].trigger for name in (PENDING_AUTOMATION, SLOT_WAIT_AUTOMATION)}
    assert stalled[PENDING_AUTOMATION].after == {"prefect.flow-run.Pending"}
    assert stalled[SLOT_WAIT_AUTOMATION].after == {"prefect.flow-run.AwaitingConcurrencySlot"}
    for trigger in stalled.values():
        assert trigger.posture == "Proactive" and "prefect.flow-run.Running" in trigger.expect
        assert "prefect.flow-run.Pending" not in trigger.expect
    quiet = autos[NO_COMPLETED_AUTOMATION][0].trigger
    assert (quiet.posture, quiet.expect, quiet.within.total_seconds()) == (
        "Proactive",
        {"prefect.flow-run.Completed"},
        7200,
    )
    assert autos[LATE_AUTOMATION][0].trigger.expect == {"prefect.flow-run.Late"}
    # Every flow we deploy has its own failure alert, saying what happened to its work.
    for name in WATCHED_FLOWS:
        [notify] = autos[run_failed_automation(name)][0].actions
        assert notify.block_document_id == block.id
    reminder_body = autos[RUN_FAILED_AUTOMATION][0].actions[0].body
    assert "stay claimed" in reminder_body and "reconciles" in reminder_body
    assert "stay planned for the next run" not in reminder_body


def test_thresholds_come_from_the_settings(prefect_server, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DUNNING_ALERT_WEBHOOK_URL", HOOK)
    monkeypatch.setenv("DUNNING_ALERT_ZOMBIE_SECONDS", "90")
    monkeypatch.setenv("DUNNING_ALERT_PENDING_SECONDS", "45")
    monkeypatch.setenv("DUNNING_ALERT_NO_COMPLETED_SECONDS", "3600")
    reload_settings()
    assert runner.invoke(app, ["setup-prefect"]).exit_code == 0
    _, autos, _ = asyncio.run(_server_state())
    assert autos[ZOMBIE_AUTOMATION][0].trigger.within.total_seconds() == 90
    assert autos[PENDING_AUTOMATION][0].trigger.within.total_seconds() == 45
    assert autos[NO_COMPLETED_AUTOMATION][0].trigger.within.total_seconds() == 3600
    monkeypatch.setenv("DUNNING_ALERT_ZOMBIE_SECONDS", "20")
    reload_settings()
    refused = runner.invoke(app, ["setup-prefect"])
    assert refused.exit_code == 1
    assert "DUNNING_ALERT_ZOMBIE_SECONDS='20'" in refused.output and "60" in refused.output
    assert "Traceback" not in refused.output


def test_setup_uses_a_named_block_and_refuses_unknown_ones(
    prefect_server, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DUNNING_ALERT_WEBHOOK_URL", HOOK)
    reload_settings()
    assert runner.invoke(app, ["setup-prefect"]).exit_code == 0
    monkeypatch.delenv("DUNNING_ALERT_WEBHOOK_URL")
    monkeypatch.setenv("DUNNING_ALERT_BLOCK", f"custom-webhook/{OPERATOR_BLOCK}")
    reload_settings()
    named = runner.invoke(app, ["setup-prefect", "--json"])
    assert named.exit_code == 0, named.output
    assert json.loads(named.stdout)["block"]["status"] == "configured"

    monkeypatch.setenv("DUNNING_ALERT_BLOCK", "slack-webhook/no-such-block")
    reload_settings()
    missing = runner.invoke(app, ["setup-prefect"])
    assert missing.exit_code == 1
    assert "slack-webhook/no-such-block" in missing.output and "no such block" in missing.output

    monkeypatch.setenv("DUNNING_ALERT_BLOCK", "just-a-name")
    reload_settings()
    malformed = runner.invoke(app, ["setup-prefect"])
    assert malformed.exit_code == 1
    assert "<block-type-slug>/<name>" in malformed.output


def test_setup_without_a_notification_target_says_which_setting_to_set(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.delenv("DUNNING_ALERT_BLOCK", raising=False)
    monkeypatch.delenv("DUNNING_ALERT_WEBHOOK_URL", raising=False)
    reload_settings()
    result = runner.invoke(app, ["setup-prefect"])
    assert result.exit_code == 1
    assert "DUNNING_ALERT_WEBHOOK_URL" in result.output and "DUNNING_ALERT_BLOCK" in result.output
    assert "Traceback" not in result.output


@pytest.fixture
def operator_hook(prefect_server, monkeypatch: pytest.MonkeyPatch) -> Iterator[AlertInbox]:
    """A real webhook receiver that setup-prefect points alerts at."""
    with alert_inbox() as inbox:
        monkeypatch.setenv("DUNNING_ALERT_WEBHOOK_URL", inbox.url)
        reload_settings()
        assert runner.invoke(app, ["setup-prefect"]).exit_code == 0
        yield inbox


def test_a_failure_rate_event_notifies_the_operator_webhook(operator_hook: AlertInbox):
    from prefect.events import emit_event

    run_id = uuid.uuid4().hex

    def emit() -> None:
        emit_event(
            event=FAILURE_RATE_EVENT,
            resource={"prefect.resource.id": f"dunning.run.{run_id}"},
            payload={"batch": 1, "sent": 1, "failed": 3, "failure_rate": 0.75, "threshold": 0.2},
        )

    mine = operator_hook.wait_for(run_id, emit)
    assert mine, operator_hook.received
    assert mine[0]["subject"] == "dunning: delivery failure rate exceeded"
    assert "failed 3 of 4 messages" in mine[0]["body"]


def test_a_failed_reminder_run_notifies_the_operator_webhook(operator_hook: AlertInbox):
    from prefect import flow

    @flow(name=REMINDER_FLOW)
    def failing_run(marker: str) -> None:
        raise RuntimeError("provider down")

    def run() -> None:
        assert failing_run(uuid.uuid4().hex, return_state=True).is_failed()

    mine = operator_hook.wait_for("reminder run failed", run)
    assert mine and mine[0]["subject"] == "dunning: a reminder run failed"
    assert "entered Failed" in mine[0]["body"]
    assert "stay claimed" in mine[0]["body"] and "never re-sends them" in mine[0]["body"]


def test_a_failed_track_responses_run_says_the_webhook_events_wait(operator_hook: AlertInbox):
    from prefect import flow

    @flow(name=TRACKING_FLOW)
    def failing_tracking(marker: str) -> None:
        raise RuntimeError("database down")

    def run() -> None:
        assert failing_tracking(uuid.uuid4().hex, return_state=True).is_failed()

    mine = operator_hook.wait_for("a track-responses run failed", run)
    assert mine, operator_hook.received
    assert "Webhook events stay in the inbox" in mine[0]["body"]
    assert "entered Failed: " in mine[0]["body"]

"""The operator alerts and the run guards, as Prefect automation specs (pure, no API calls).

Why automations and not our own watchdog: the Prefect server (or Prefect Cloud, which serves
the same automations API) sees every flow-run state change and heartbeat, including those of
runs whose worker or process died and so can no longer speak for themselves.

- guards (:func:`guard_specs`): act on the server without a person. The one guard crashes a
  flow run of ours whose heartbeats stopped (a "zombie"), which frees the deployment's
  concurrency slot so the next run can start.
- alerts (:func:`alert_specs`): notify the operator through a notification block — a run
  failed or crashed, stayed Pending, waited too long for its concurrency slot, is Late, no
  reminder run completed for a while, a batch's failure rate passed the threshold.

The trigger shapes follow Prefect's documentation ("Detect and respond to zombie flows";
proactive triggers with ``after``/``expect``/``for_each``).
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from prefect.automations import (
    AutomationCore,
    ChangeFlowRunState,
    EventTrigger,
    Posture,
    SendNotification,
)
from prefect.client.schemas.objects import StateType

from dunning.config import AlertSettings

REMINDER_FLOW = "payment-reminders"
TRACKING_FLOW = "track-responses"
RETENTION_FLOW = "retention"
SYNC_FLOW = "sync-sources"
DRY_RUN_FLOW = "reminders-dry-run"
#: The flows the guards and alerts watch: every flow dunning deploys.
WATCHED_FLOWS = [REMINDER_FLOW, TRACKING_FLOW, RETENTION_FLOW, SYNC_FLOW, DRY_RUN_FLOW]

FAILURE_RATE_EVENT = "dunning.batch.failure-rate-exceeded"
HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"

RUN_FAILED_AUTOMATION = "dunning: payment-reminders run failed"
FAILURE_RATE_AUTOMATION = "dunning: batch failure rate exceeded"
ZOMBIE_AUTOMATION = "dunning: crash zombie flow runs"
PENDING_AUTOMATION = "dunning: run stuck in Pending"
SLOT_WAIT_AUTOMATION = "dunning: run waiting for its concurrency slot"
LATE_AUTOMATION = "dunning: run is late"
NO_COMPLETED_AUTOMATION = "dunning: no completed payment-reminders run"

#: The state message a zombie run gets when the guard crashes it.
ZOMBIE_MESSAGE = (
    "Crashed by the 'dunning: crash zombie flow runs' automation: no heartbeat for "
    "{seconds} s (its worker or process died). Mid-send reminders stay claimed and the next "
    "run reconciles them; nothing is sent twice."
)

# The states a run leaves Pending (or its wait for a slot) to; anything but Pending itself.
_STARTED = {
    "prefect.flow-run.Running",
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Crashed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Cancelling",
}

# What happened to the run's work when it failed, crashed or hung: one paragraph per flow.
_CONSEQUENCE = {
    REMINDER_FLOW: (
        "Its reminders: those sent stay sent and are never sent again. Those it had claimed "
        "but not recorded (mid-send) stay claimed until their lease ends (DUNNING_LEASE_SECONDS)"
        "; the next run then reconciles them - it asks Twilio whether each SMS left, and marks "
        "the rest 'unknown' for you to check with `dunning ledger` - and never re-sends them "
        "blindly. Those not yet claimed stay planned and go out with the next run."
    ),
    TRACKING_FLOW: (
        "Webhook events stay in the inbox and the next run applies them; none is lost. Until "
        "one succeeds, payments and opt-outs that arrived by webhook are not in the ledger, so "
        "a reminder run could still remind those customers."
    ),
    RETENTION_FLOW: (
        "Nothing past retention was removed by this run; message bodies and webhook payloads "
        "past retention stay stored until a retention run succeeds."
    ),
    DRY_RUN_FLOW: "A dry run sends and records nothing: start it again when ready.",
    SYNC_FLOW: (
        "Customers, invoices and payments from its sources were not refreshed. A reminder run "
        "syncs a stale source itself first and defers the reminders of a source that stays "
        "stale (reason source_stale), so nothing goes out on stale data - and nothing goes "
        "out for those customers until a sync succeeds."
    ),
}


def _our_flows(names: list[str]) -> dict[str, str | list[str]]:
    """The related-resource filter for flow runs of the flows ``names``."""
    return {"prefect.resource.role": "flow", "prefect.resource.name": names}


def _flow_run_trigger(
    expect: set[str], flows: list[str], *, seconds: int = 0, after: set[str] | None = None
) -> EventTrigger:
    """A trigger on flow-run events of ``flows``: reactive (fires on an ``expect`` event), or
    with ``seconds`` proactive (fires when no ``expect`` event came within ``seconds`` — after
    an ``after`` event of the same flow run, when given)."""
    proactive = seconds > 0
    return EventTrigger(
        after=after or set(),
        expect=expect,
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related=_our_flows(flows),  # type: ignore[arg-type]
        for_each={"prefect.resource.id"} if after else set(),
        posture=Posture.Proactive if proactive else Posture.Reactive,
        threshold=1,
        within=dt.timedelta(seconds=seconds),
    )


def _notify(block_document_id: UUID, subject: str, body: str) -> SendNotification:
    return SendNotification(block_document_id=block_document_id, subject=subject, body=body)


def guard_specs(settings: AlertSettings) -> list[AutomationCore]:
    """The automations that act without a person: crash zombie flow runs of our flows.

    A flow run emits ``prefect.flow-run.heartbeat`` every PREFECT_FLOWS_HEARTBEAT_FREQUENCY
    seconds while it runs; after a heartbeat any flow-run event (the next heartbeat, a state
    change) is expected within ``zombie_seconds``, else the run is set to Crashed. A crash
    releases the deployment's concurrency slot and fires the "run failed" alert.
    """
    zombie = AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description="Crash a dunning flow run whose heartbeats stopped (its worker or process "
        "died), so it stops holding the deployment's concurrency slot.",
        enabled=True,
        trigger=_flow_run_trigger(
            {"prefect.flow-run.*"},
            WATCHED_FLOWS,
            seconds=settings.zombie_seconds,
            after={HEARTBEAT_EVENT},
        ),
        actions=[
            ChangeFlowRunState(
                name=None,
                force=False,
                state=StateType.CRASHED,
                message=ZOMBIE_MESSAGE.format(seconds=settings.zombie_seconds),
            )
        ],
    )
    return [zombie]


def run_failed_automation(flow_name: str) -> str:
    """The name of the automation that alerts when a run of ``flow_name`` fails or crashes."""
    return f"dunning: {flow_name} run failed"


def _run_failed(block_document_id: UUID, flow_name: str) -> AutomationCore:
    body = (
        f"Flow run {{{{ flow_run.name }}}} of {flow_name} entered {{{{ flow_run.state.name }}}}"
        ": {{ flow_run.state.message }}\n"
        f"{_CONSEQUENCE[flow_name]}\n"
        "Open it: {{ flow_run|ui_url }}"
    )
    return AutomationCore(
        name=run_failed_automation(flow_name),
        description=f"Notify the operator when a {flow_name} flow run fails or crashes.",
        enabled=True,
        trigger=_flow_run_trigger(
            {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}, [flow_name]
        ),
        actions=[
            _notify(
                block_document_id,
                "dunning: a reminder run failed"
                if flow_name == REMINDER_FLOW
                else f"dunning: a {flow_name} run failed",
                body,
            )
        ],
    )


def _stalled(
    block_document_id: UUID, name: str, after: str, seconds: int, subject: str, what: str
) -> AutomationCore:
    """An alert for a flow run of ours that entered ``after`` and did not start in time."""
    body = (
        f"Flow run {{{{ flow_run.name }}}} has {what} for more than {seconds} s.\n"
        "Check that a worker of its work pool is running and healthy (`prefect work-pool "
        "inspect dunning`, the worker's /health) and whether an earlier run still holds the "
        "deployment's concurrency slot (docs/prefect.md, 'Recovery runbook'). Nothing of this "
        "run has been sent yet; its reminders stay planned.\n"
        "Open it: {{ flow_run|ui_url }}"
    )
    return AutomationCore(
        name=name,
        description=f"Notify the operator when a dunning flow run has {what} for {seconds} s.",
        enabled=True,
        trigger=_flow_run_trigger(_STARTED, WATCHED_FLOWS, seconds=seconds, after={after}),
        actions=[_notify(block_document_id, subject, body)],
    )


def alert_specs(block_document_id: UUID, settings: AlertSettings) -> list[AutomationCore]:
    """The operator alerts, notifying through block ``block_document_id``."""
    runs_failed = [_run_failed(block_document_id, name) for name in WATCHED_FLOWS]
    pending = _stalled(
        block_document_id,
        PENDING_AUTOMATION,
        "prefect.flow-run.Pending",
        settings.pending_seconds,
        "dunning: a run is stuck in Pending",
        "been Pending (submitted to a worker, never started)",
    )
    slot_wait = _stalled(
        block_document_id,
        SLOT_WAIT_AUTOMATION,
        "prefect.flow-run.AwaitingConcurrencySlot",
        settings.slot_wait_seconds,
        "dunning: a run waits for its concurrency slot",
        "waited in AwaitingConcurrencySlot (another run of its deployment holds the slot)",
    )
    late = AutomationCore(
        name=LATE_AUTOMATION,
        description="Notify the operator when a scheduled dunning flow run is Late.",
        enabled=True,
        trigger=_flow_run_trigger({"prefect.flow-run.Late"}, WATCHED_FLOWS),
        actions=[
            _notify(
                block_document_id,
                "dunning: a scheduled run is late",
                "Flow run {{ flow_run.name }} is Late: no worker picked it up at its scheduled "
                "time. Start a worker (`prefect worker start --pool dunning --with-healthcheck`) "
                "or check the work pool is not paused. Its reminders stay planned.\n"
                "Open it: {{ flow_run|ui_url }}",
            )
        ],
    )
    no_completed = AutomationCore(
        name=NO_COMPLETED_AUTOMATION,
        description="Notify the operator when no payment-reminders run completed for "
        f"{settings.no_completed_seconds} s.",
        enabled=True,
        trigger=_flow_run_trigger(
            {"prefect.flow-run.Completed"}, [REMINDER_FLOW], seconds=settings.no_completed_seconds
        ),
        actions=[
            _notify(
                block_document_id,
                "dunning: no reminder run completed",
                f"No payment-reminders flow run completed in the last "
                f"{settings.no_completed_seconds} s, so no reminders went out. Check the "
                "deployment's schedule is active, a worker is running, and the last runs' states "
                "(docs/prefect.md, 'Recovery runbook').",
            )
        ],
    )
    failure_rate = AutomationCore(
        name=FAILURE_RATE_AUTOMATION,
        description="Notify the operator when a delivery batch's failure rate passes "
        "DUNNING_ALERT_FAILURE_RATE.",
        enabled=True,
        trigger=EventTrigger(
            expect={FAILURE_RATE_EVENT},
            match={"prefect.resource.id": "dunning.run.*"},
            posture=Posture.Reactive,
            threshold=1,
            within=dt.timedelta(0),
        ),
        actions=[
            _notify(
                block_document_id,
                "dunning: delivery failure rate exceeded",
                "A delivery batch of reminder run {{ event.resource.id }} failed "
                "{{ event.payload.failed }} of {{ event.payload.sent + event.payload.failed }} "
                "messages (rate {{ event.payload.failure_rate }}, threshold "
                "{{ event.payload.threshold }}).\n"
                "See the run's reminder-run-failures artifact for the error codes.",
            )
        ],
    )
    return [*runs_failed, pending, slot_wait, late, no_completed, failure_rate]

"""Sharded reminder runs: a coordinator starts one run per shard (customer shard_key modulo
``shards``) and reports their sum.

From a deployment the shard runs are deployment runs that any worker of the pool picks up, on
any machine sharing the database; elsewhere (CLI, notebook) they are subflows in this process.
What keeps a reminder from going out twice is the ledger's claim, not the split.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from prefect import Flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.runtime import deployment, flow_run
from prefect.states import State

from dunning import runs
from dunning.db import get_engine
from dunning.db.models import utcnow
from dunning.params import RunParameters
from dunning.report import RunReport
from dunning.sharding import split_evenly
from dunning.tasks.report import publish_report

#: The deployment a coordinator started from a deployment sends its shards to, when it exists.
SHARD_DEPLOYMENT = "payment-reminders/payment-reminders-shard"
_POLL_S = 2.0  # how often a coordinator asks the Prefect API whether its shard runs ended
_IDLE_WARNING_S = 60.0  # shard runs still scheduled this long: say that no worker took them


@dataclass
class ShardOutcome:
    """How one shard run of a coordinator ended, and its report if it left one."""

    shard: int
    flow_run_id: str | None
    flow_run_name: str | None
    state: str
    message: str | None
    report: RunReport | None

    @property
    def completed(self) -> bool:
        """Whether the shard run completed and its report is there."""
        return self.state == "COMPLETED" and self.report is not None

    def summary(self) -> dict[str, Any]:
        """The shard's line in the coordinator's report."""
        return {
            "shard": self.shard,
            "flow_run_id": self.flow_run_id,
            "flow_run_name": self.flow_run_name,
            "state": self.state,
            "counts": self.report.counts() if self.report else None,
        }

    def problem(self, shards: int) -> str:
        """Why this shard counts as failed, naming the shard and its flow run."""
        run = f"flow run {self.flow_run_name or '?'} ({self.flow_run_id})"
        if self.state == "COMPLETED":
            return (
                f"shard {self.shard} of {shards} ({run}) completed but stored no outcomes in "
                "reminder_runs: does that worker run an older dunning? Run `dunning db upgrade` "
                "and redeploy from this checkout"
            )
        return f"shard {self.shard} of {shards} ({run}) ended {self.state}: {self.message or ''}"


def coordinate(params: RunParameters, shard_flow: Flow[..., Any]) -> RunReport:
    """The sum of the shard runs' reports, after starting one run per shard and waiting for
    all; raises naming every shard that did not complete (after the others finished).

    ``shard_flow`` is the flow a shard runs as in this process (payment-reminders, which
    passes itself: this module does not import the flows that use it).
    """
    log = get_run_logger()
    # Every shard acts as of the same instant, so together they do what one run would.
    as_of = params.as_of or utcnow()
    run_id = str(flow_run.id or uuid.uuid4())
    budgets = (
        split_evenly(params.max_messages, params.shards)
        if params.max_messages is not None
        else [None] * params.shards
    )
    shard_params = [
        params.model_copy(update={"as_of": as_of, "shard": k, "max_messages": budgets[k]})
        for k in range(params.shards)
    ]
    target = _shard_target(params)
    if target is None:
        log.info("running %d shards in this process as of %s", params.shards, as_of.isoformat())
        results = _run_in_process(shard_params, shard_flow)
    else:
        log.info("starting %d shard runs of deployment %s", params.shards, target)
        results = _run_on_workers(target, shard_params, log)
    report = RunReport.combine(
        as_of,
        params.dry_run,
        run_id,
        [r.report for r in results if r.report is not None],
        [r.summary() for r in results],
    )
    publish_report(report, None)
    failed = [r for r in results if not r.completed]
    if failed:
        raise RuntimeError("; ".join(r.problem(params.shards) for r in failed))
    return report


def _shard_target(params: RunParameters) -> uuid.UUID | None:
    """The id of the deployment to run the shards on, or None to run them in this process.

    Raises when the named shard deployment does not exist, or when the shards would run on
    this coordinator's own deployment while it has a concurrency limit: they would queue
    behind the coordinator that waits for them, forever.
    """
    own = deployment.id
    if params.shard_deployment is None and own is None:
        return None
    with get_client(sync_client=True) as client:
        if params.shard_deployment is not None:
            try:
                target = client.read_deployment_by_name(params.shard_deployment)
            except ObjectNotFound:
                raise ValueError(
                    f"shard_deployment {params.shard_deployment!r} does not exist on the Prefect "
                    "server: deploy it (`prefect deploy --all`) or correct the name"
                ) from None
        else:
            try:
                target = client.read_deployment_by_name(SHARD_DEPLOYMENT)
            except ObjectNotFound:
                target = client.read_deployment(own)
    limited = target.global_concurrency_limit is not None or target.concurrency_limit
    if own is not None and str(target.id) == str(own) and limited:
        raise ValueError(
            f"the shards would run on this run's own deployment {target.name!r}, whose "
            "concurrency limit makes them wait behind this coordinator forever; deploy "
            f"{SHARD_DEPLOYMENT} (see prefect.yaml) or set shard_deployment to a deployment "
            "of this flow without a concurrency limit"
        )
    return target.id


def _shard_run_name(p: RunParameters) -> str:
    """The flow run name of shard run ``p``: the coordinator's name with the shard's number."""
    return f"{flow_run.name or 'reminders'} shard {p.shard} of {p.shards}"


def _run_in_process(
    shard_params: list[RunParameters], shard_flow: Flow[..., Any]
) -> list[ShardOutcome]:
    """How each shard ended, run one after another as subflows (of ``shard_flow``) of this run."""
    results = []
    for p in shard_params:
        name = _shard_run_name(p)
        run: Any = shard_flow.with_options(flow_run_name=name)  # with return_state: a State
        state: State[Any] = run(**p.model_dump(), return_state=True)
        child = state.state_details.flow_run_id
        report = state.result(raise_on_failure=False) if state.is_completed() else None
        if not isinstance(report, RunReport):
            report = _stored_report(child)
        results.append(
            ShardOutcome(
                shard=int(p.shard or 0),
                flow_run_id=str(child) if child else None,
                flow_run_name=name,
                state=state.type.value,
                message=state.message,
                report=report,
            )
        )
    return results


def _run_on_workers(
    target: uuid.UUID, shard_params: list[RunParameters], log: Any
) -> list[ShardOutcome]:
    """How each shard ended, run as flow runs of deployment ``target`` that any worker of its
    pool picks up; returns when every one of them has ended."""
    started: list[FlowRun] = []
    for p in shard_params:
        run = run_deployment(
            target,
            # Every parameter, top-level: the shard deployment's own defaults do not matter.
            parameters=p.model_dump(mode="json", exclude_none=True),
            flow_run_name=_shard_run_name(p),
            timeout=0,  # start them all first, then wait for all
            as_subflow=True,
        )
        assert isinstance(run, FlowRun)  # a sync flow gets the run, not a coroutine
        started.append(run)
    ended = _wait_for([r.id for r in started], log)
    results = []
    for p, run in zip(shard_params, started, strict=True):
        final = ended[run.id]
        state = final.state
        results.append(
            ShardOutcome(
                shard=int(p.shard or 0),
                flow_run_id=str(run.id),
                flow_run_name=final.name,
                state=state.type.value if state else "UNKNOWN",
                message=state.message if state else None,
                report=_stored_report(run.id),
            )
        )
    return results


def _wait_for(ids: list[uuid.UUID], log: Any) -> dict[uuid.UUID, FlowRun]:
    """The flow runs ``ids`` once each is in a final state (completed, failed, crashed,
    cancelled); warns once when none has left Scheduled for a while (no worker polling?)."""
    ended: dict[uuid.UUID, FlowRun] = {}
    since = time.monotonic()
    warned = False
    with get_client(sync_client=True) as client:
        while len(ended) < len(ids):
            waiting = [i for i in ids if i not in ended]
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=waiting))
            )
            for run in runs:
                if run.state is not None and run.state.is_final():
                    ended[run.id] = run
            idle = all(r.state is not None and r.state.is_scheduled() for r in runs)
            if idle and not warned and time.monotonic() - since > _IDLE_WARNING_S:
                log.warning(
                    "%d shard run(s) still scheduled after %.0f s: is a worker polling their "
                    "work pool, with room for more flow runs than this coordinator?",
                    len(waiting),
                    _IDLE_WARNING_S,
                )
                warned = True
            if len(ended) < len(ids):
                time.sleep(_POLL_S)
    return ended


def _stored_report(flow_run_id: uuid.UUID | str | None) -> RunReport | None:
    """The report the shard run ``flow_run_id`` stored (its latest attempt), or None."""
    return runs.stored_report(get_engine(), flow_run_id)

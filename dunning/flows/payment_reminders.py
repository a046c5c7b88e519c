"""The payment-reminders flow: fetch → segment and plan → deliver → record → report.

With ``shards`` > 1 and no ``shard`` the flow coordinates instead: it starts one run per shard
(a deployment run any worker can pick up, or a subflow in this process), waits for them and
reports their sum. What keeps a reminder from going out twice is the ledger's claim, not the
split: shards only divide the work.
"""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, tags
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import PrefectFuture, as_completed, wait
from prefect.runtime import flow_run
from prefect.states import Cancelled, State
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import TypeAdapter

from dunning import ledger, runs
from dunning.channels import check_email_compliance
from dunning.db import get_engine
from dunning.db.models import utcnow
from dunning.delivery import BatchResult
from dunning.errors import ProviderAuthError
from dunning.experiments.templates import check_variants
from dunning.flows.approval import await_approval
from dunning.flows.final_state import completed, hand_report_back
from dunning.flows.outbound_events import deliver_outbound_events
from dunning.flows.shards import coordinate
from dunning.ledger import MinBalance
from dunning.ledger.plan import record_holdouts
from dunning.params import (
    MAX_CONCURRENCY,
    AsOf,
    BatchSize,
    Channels,
    Concurrency,
    DryRun,
    InvoiceNumbers,
    MaxMessages,
    MaxTasks,
    PolicyPath,
    RunParameters,
    Segments,
    Shard,
    ShardDeployment,
    Shards,
    Stages,
    document_parameters,
)
from dunning.policy.model import base_stage
from dunning.policy.window import preload_calendars
from dunning.progress import DeliveryProgress
from dunning.progress import report as report_progress
from dunning.render import processes as composing_processes
from dunning.report import RunReport, outcomes
from dunning.sources.freshness import defer_stale, stale_invoice_ids
from dunning.tasks.deliver import (
    TransientDeliveryError,
    deliver,
    reconcile_stale_claims,
    record_plan,
)
from dunning.tasks.fetch import fetch_portfolio
from dunning.tasks.plan import check_templates, plan_reminders
from dunning.tasks.report import emit_batch, publish_report, raise_escalations
from dunning.tasks.sources import check_stale_sources, refresh_stale_sources
from dunning.timeouts import flow_timeout


def batches_of(ids: list[int], batch_size: int, max_tasks: int) -> list[list[int]]:
    """``ids`` cut into batches of ``batch_size``, enlarged so there are at most ``max_tasks``.

    Prefect's server drops task-run records beyond a few thousand per flow run, so the
    fan-out unit grows with the run instead of the task count.
    """
    if not ids:
        return []
    size = max(batch_size, math.ceil(len(ids) / max_tasks))
    return [ids[i : i + size] for i in range(0, len(ids), size)]


#: The batch a run without ``batch_size`` grows to once it is too large for one task per
#: invoice, unless that would leave fewer batches than ``concurrency`` can run at once. Each
#: delivery task costs about five Prefect API calls (its states' events, its tag check, its
#: logs), so batches of 500 keep a 20,000-message run near 13 calls per 1,000 messages where
#: the ``max_tasks`` bound alone (200 batches of 100) made it about 50; Prefect Cloud
#: rate-limits its API (docs/performance.md, issue 19).
DEFAULT_BATCH = 500


def default_batch(items: int, max_tasks: int, concurrency: int | None) -> int:
    """The batch size (in fan-out units: invoices or customers) for ``items`` units when no
    ``batch_size`` is given and one task per unit would exceed ``max_tasks``: DEFAULT_BATCH,
    or smaller so ``concurrency`` tasks still run side by side, and never so small that the
    run exceeds ``max_tasks`` task runs. Without ``concurrency`` (None): 1, the smallest the
    ``max_tasks`` bound allows."""
    if concurrency is None:
        return 1
    return max(1, min(DEFAULT_BATCH, math.ceil(items / max(concurrency, 1))))


def fan_out(
    groups: list[list[int]], batch_size: int | None, max_tasks: int, concurrency: int | None = None
) -> list[list[int]]:
    """The delivery tasks' batches: one per invoice while that keeps the run within
    ``max_tasks`` task runs and no ``batch_size`` is given, else batches of the ids (of
    ``batch_size``, or of ``default_batch`` when it is not given)."""
    if batch_size is None and len(groups) <= max_tasks:
        return groups
    ids = [i for g in groups for i in g]
    return batches_of(ids, batch_size or default_batch(len(ids), max_tasks, concurrency), max_tasks)


def consolidated_customers(sends: pd.DataFrame, policy: Any) -> set[str]:
    """The customers among ``sends`` whose segment's policy says consolidate = "customer"
    (one message per customer and channel)."""
    mode = getattr(policy, "consolidate_for", None)
    if mode is None or sends.empty:
        return set()
    return {
        str(customer)
        for customer, segment in zip(sends["customer_id"], sends["segment"], strict=True)
        if mode(str(segment)) == "customer"
    }


def pack_customers(
    groups: list[list[int]], batch_size: int | None, max_tasks: int, concurrency: int | None = None
) -> list[list[list[int]]]:
    """Customers' reminder ids (one list per customer) packed into delivery batches, a
    customer never split across two (its rows are claimed together): one customer per batch
    while that keeps the run within ``max_tasks`` task runs and no ``batch_size`` is given,
    else ``batch_size`` customers per batch (``default_batch`` when not given), enlarged so
    there are at most ``max_tasks``."""
    if not groups:
        return []
    if batch_size is None and len(groups) <= max_tasks:
        return [[g] for g in groups]
    unit = batch_size or default_batch(len(groups), max_tasks, concurrency)
    size = max(unit, math.ceil(len(groups) / max_tasks))
    return [groups[i : i + size] for i in range(0, len(groups), size)]


def run_name(prefix: str) -> Callable[[], str]:
    """A flow_run_name callable: ``<prefix> <as_of as YYYY-MM-DDTHH:MMZ>`` (now when empty),
    e.g. ``reminders 2026-11-30T15:00Z``, so the runs list tells runs apart by their as-of."""

    def name() -> str:
        value = (flow_run.parameters or {}).get("as_of")
        try:
            as_of = TypeAdapter(AsOf).validate_python(value) or utcnow()
        except ValueError:  # the flow's own validation reports it; the name just shows it
            return f"{prefix} {value}"
        return f"{prefix} {as_of.astimezone(dt.UTC):%Y-%m-%dT%H:%MZ}"

    return name


@flow(
    name="payment-reminders",
    timeout_seconds=flow_timeout("payment_reminders"),
    flow_run_name=run_name("reminders"),
    description="Plan and send the payment reminders due now, once each, and report.",
    # As many workers as the concurrency parameter allows (threads start only when used): the
    # delivery loop's window of ``concurrency`` tasks is the limit, not a smaller pool.
    task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENCY),  # type: ignore[arg-type]
    log_prints=False,
    on_completion=[hand_report_back],  # the report reaches the caller (final_state)
)
@document_parameters
def payment_reminders(
    as_of: AsOf = None,
    dry_run: DryRun = False,
    channels: Channels = (),
    segments: Segments = (),
    stages: Stages = (),
    invoice_numbers: InvoiceNumbers = (),
    batch_size: BatchSize = None,
    max_tasks: MaxTasks = 200,
    concurrency: Concurrency = 4,
    max_messages: MaxMessages = None,
    policy_path: PolicyPath = None,
    shards: Shards = 1,
    shard: Shard = None,
    shard_deployment: ShardDeployment = None,
) -> State[RunReport]:
    """The run's report: what was sent, failed, skipped and deferred, per plan line (for a
    coordinator of shards: the sum of its shards' reports), in a Completed state whose message
    gives the counts. Each parameter is top-level, so a run that sets one keeps the
    deployment's defaults for the others."""
    return completed(
        run_reminders(
            RunParameters(
                as_of=as_of,
                dry_run=dry_run,
                channels=channels,
                segments=segments,
                stages=stages,
                invoice_numbers=invoice_numbers,
                batch_size=batch_size,
                max_tasks=max_tasks,
                concurrency=concurrency,
                max_messages=max_messages,
                policy_path=policy_path,
                shards=shards,
                shard=shard,
                shard_deployment=shard_deployment,
            )
        )
    )


def run_reminders(params: RunParameters) -> RunReport:
    """The report of one reminder run with ``params``, inside a flow run (the body of
    ``payment_reminders`` and ``reminders_dry_run``); a dry run returns before anything is
    written to the ledger or handed to a provider."""
    preload_calendars()  # while the sources are checked and the portfolio loads
    # Sources older than their maximum age are synced first (once, by a coordinator for all
    # its shards); those still stale after that have their reminders deferred below.
    stale = refresh_stale_sources() if params.shard is None and not params.dry_run else None
    if params.shards > 1 and params.shard is None:
        return coordinate(params, payment_reminders)
    log = get_run_logger()
    as_of = params.as_of or utcnow()
    run_id = str(flow_run.id or uuid.uuid4())
    claimer = f"run-{run_id}"
    shard = None
    if params.shard is not None and params.shards > 1:
        shard = (params.shards, params.shard)
        log.info("shard %d of %d", params.shard, params.shards)

    if not params.dry_run and "email" in (_names(params.channels) or ["email"]):
        # Before anything is claimed: real e-mail with a one-click link that cannot work is
        # refused (ConfigError names the setting).
        check_email_compliance()
    # Settle claims a crashed run left behind first, so what they release is planned now.
    reconciled = {} if params.dry_run else reconcile_stale_claims()
    numbers = _names(params.invoice_numbers)
    # The whole portfolio (or a shard of it): only the invoices that could be actionable now
    # are loaded and planned; a run for named invoices plans them whatever their state.
    portfolio = fetch_portfolio(
        numbers,
        shard,
        actionable_at=as_of if numbers is None else None,
        policy_path=params.policy_path,
    )
    planned: tuple[pd.DataFrame, Any] = plan_reminders(
        portfolio,
        as_of,
        params.policy_path,
        _names(params.channels),
        _names(params.segments),
        _names(params.stages),
        params.max_messages,
    )
    lines, policy = planned
    stale = check_stale_sources() if stale is None else stale
    lines = defer_stale(lines, stale_invoice_ids(get_engine(), list(stale)), as_of)
    # An experiment's variant missing for a locale: the control template, reported.
    lines, variant_warnings = check_variants(lines)
    for warning in variant_warnings:
        log.warning("%s", warning)
    sends = lines[lines["action"] == "send"]
    log.info("planned %d reminder(s) to send as of %s", len(sends), as_of.isoformat())
    # Before anything is written or sent: a broken template fails the run here, whole.
    check_templates(lines)

    if params.dry_run:
        report = RunReport(
            as_of,
            True,
            run_id,
            outcomes(None, lines, claimer=claimer, dry_run=True),
            warnings=variant_warnings,
        )
        publish_report(report, None)
        if params.shard is not None:
            runs.store_outcomes(get_engine(), None, report)
        log.info("dry run as of %s: %s", as_of.isoformat(), report.summary_line())
        return report

    # Approval before the loud part (DUNNING_APPROVAL_*): nothing is recorded or sent before
    # a person approves; a rejected run ends Cancelled and the next run plans again.
    held = await_approval(sends)
    if held is not None:
        log.warning("%s", held)
        # A returned state is the run's final state (Prefect's convention).
        return Cancelled(message=held)  # type: ignore[return-value]

    run_row_id = runs.start_run(get_engine(), run_id, as_of)

    raise_escalations(lines, run_id, as_of)
    per_customer = consolidated_customers(sends, policy)
    groups, customer_groups = record_plan(sends, run_id, as_of, per_customer)
    record_holdouts(get_engine(), lines, run_id=run_id, as_of=as_of)
    tasks = params.max_tasks if not (groups and customer_groups) else max(params.max_tasks // 2, 1)
    batches = fan_out(groups, params.batch_size, tasks, params.concurrency)
    packed = pack_customers(customer_groups, params.batch_size, tasks, params.concurrency)
    try:
        stopped, _ = _deliver_all(
            batches + [[i for g in b for i in g] for b in packed],
            claimer,
            policy.min_balance_for,
            as_of,
            params.concurrency,
            log,
            customers=[0] * len(batches) + [len(b) for b in packed],
            policy=policy,
        )
    finally:
        composing_processes.shutdown()  # started by the run's first large batch, if any

    report = RunReport(
        as_of,
        False,
        run_id,
        outcomes(get_engine(), lines, claimer=claimer, dry_run=False),
        reconciled=reconciled,
        stopped=stopped,
        warnings=variant_warnings,
    )
    publish_report(report, run_row_id)
    if params.shard is not None:
        runs.store_outcomes(get_engine(), run_row_id, report)
    # Tell subscribers now; a failure here is retried by the outbound-events flow, so it
    # never fails the reminder run (return_state keeps its exception in the task run).
    deliver_outbound_events(return_state=True)
    log.info("run totals as of %s: %s", as_of.isoformat(), report.summary_line())
    if stopped:
        raise RuntimeError(f"delivery stopped early: {stopped}")
    return report


def _names(values: Sequence[Any]) -> list[str] | None:
    """Enum members (or their values) as plain strings; empty (= no restriction) is None."""
    return [str(getattr(v, "value", v)) for v in values] or None


def batch_names(
    batches: list[list[int]],
    kinds: dict[int, tuple[str, str]],
    customers: Sequence[int] = (),
) -> list[tuple[str, list[str]]]:
    """Each batch's task-run name and tags: ``deliver email batch 3/12 (200)`` (channels
    joined by ``+`` when a batch mixes them; the count is of reminders), tags ``channel:<c>``
    and ``stage:<base stage>``. A batch of whole customers (one message per customer;
    ``customers[i]`` > 0 of them) is named ``deliver email customers batch 2/5 (40)``, the
    count being of customers."""
    out = []
    for number, batch in enumerate(batches, start=1):
        channels = sorted({kinds[i][0] for i in batch if i in kinds})
        stages = sorted({base_stage(kinds[i][1]) for i in batch if i in kinds})
        count = customers[number - 1] if number <= len(customers) else 0
        unit = " customers" if count else ""
        name = f"deliver {'+'.join(channels) or 'reminders'}{unit} batch {number}/{len(batches)}"
        tags = [f"channel:{c}" for c in channels] + [f"stage:{st}" for st in stages]
        out.append((f"{name} ({count or len(batch)})", tags))
    return out


#: Seconds between two updates of the run's progress artifact (and the last batch's).
PROGRESS_EVERY_S = 5.0


def _deliver_all(
    batches: list[list[int]],
    claimer: str,
    min_balance: MinBalance,
    as_of: dt.datetime,
    concurrency: int,
    log: Any,
    customers: Sequence[int] = (),
    policy: Any = None,
) -> tuple[str | None, BatchResult]:
    """Why delivery stopped (None if it did not) and the batches' summed counts; runs the
    delivery tasks, ``concurrency`` at a time, logging one line per finished batch.
    ``customers[i]`` > 0: batch i holds that many whole customers, one message each per
    channel (policy consolidate = "customer"), their lead stage ranked by ``policy``'s ladder."""
    total = len(batches)
    progress = create_progress_artifact(
        0.0, key="reminder-run-progress", description="Share of delivery batches finished."
    )
    assert isinstance(progress, uuid.UUID)  # a sync flow gets the id, not a coroutine
    names = batch_names(
        batches,
        ledger.channels_and_stages(get_engine(), [i for b in batches for i in b]),
        customers,
    )
    planned = sum(len(b) for b in batches)
    totals = BatchResult()
    done = handled = 0
    failed_batches = 0
    report_progress(DeliveryProgress(planned, 0, 0, 0, 0, total, 0))
    shown = time.monotonic()  # when the progress artifact was last updated
    pending = iter(enumerate(batches, start=1))
    running: dict[PrefectFuture[Any], int] = {}
    # Why a sliding window rather than waves of ``concurrency``: a wave waits for its slowest
    # batch while the other slots idle; here a finished batch hands its slot on at once.
    while True:
        for number, batch in islice(pending, max(concurrency, 1) - len(running)):
            name, batch_tags = names[number - 1]
            with tags(*batch_tags):
                task = deliver.with_options(task_run_name=name)
                per_customer = number <= len(customers) and customers[number - 1] > 0
                future = task.submit(batch, claimer, min_balance, as_of, per_customer, policy)
                running[future] = number
        if not running:
            break
        fut = next(as_completed(list(running)))
        number = running.pop(fut)
        try:
            res = fut.result()
        except ProviderAuthError as exc:
            log.error("provider refused our credentials: %s", exc)
            wait(list(running))
            return str(exc), totals
        except TransientDeliveryError as exc:
            failed_batches += 1
            log.warning("batch %d: %s after all retries; left for the next run", number, exc)
            res = exc.result
        done += 1
        handled += len(batches[number - 1])
        for attr in ("sent", "failed", "skipped", "released", "ambiguous"):
            setattr(totals, attr, getattr(totals, attr) + getattr(res, attr))
        log.info(
            "%s: sent %d, failed %d, skipped %d, left planned %d, unknown %d",
            names[number - 1][0].removeprefix("deliver "),
            res.sent,
            res.failed,
            res.skipped,
            res.released,
            res.ambiguous,
        )
        emit_batch(
            claimer.removeprefix("run-"),
            {
                "batch": number,
                "batches": total,
                "sent": res.sent,
                "failed": res.failed,
                "skipped": res.skipped,
                "left_planned": res.released,
                "unknown": res.ambiguous,
            },
        )
        # Why at most every PROGRESS_EVERY_S: each update is a Prefect API call, and one per
        # batch made the run's calls grow with its size (Prefect Cloud rate-limits its API).
        if done == total or time.monotonic() - shown >= PROGRESS_EVERY_S:
            update_progress_artifact(progress, 100.0 * done / max(total, 1))
            shown = time.monotonic()
        report_progress(
            DeliveryProgress(
                planned, handled, totals.sent, totals.failed, totals.skipped, total, done
            )
        )
    if failed_batches:
        return (
            f"{failed_batches} of {total} batch(es) hit transient provider errors after all "
            "retries (provider down?); their reminders stay planned for the next run"
        ), totals
    return None, totals

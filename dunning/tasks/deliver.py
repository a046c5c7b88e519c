"""Deliver: write the plan to the ledger, settle stale claims, send batches with retries."""

from __future__ import annotations

import datetime as dt
import threading
import time
from functools import partial
from typing import Any

import pandas as pd
from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import exponential_backoff

from dunning import ledger
from dunning.channels import get_channel
from dunning.channels.base import Channel
from dunning.config import Settings, get_settings
from dunning.core.messages import StaleClaim
from dunning.db import get_engine
from dunning.db.models import CHANNELS
from dunning.delivery import BatchResult, deliver_batch
from dunning.errors import ConfigError
from dunning.ledger import MinBalance, reconcile
from dunning.policy.model import Policy
from dunning.render import compose, compose_group
from dunning.render.processes import compose_units


class TransientDeliveryError(Exception):
    """Some reminders of a batch hit a transient provider error; they are back to planned."""

    def __init__(self, result: BatchResult) -> None:
        self.result = result
        super().__init__(
            f"{result.released} reminder(s) hit a transient provider error and wait for a retry"
        )


def _only_transient(task_: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a delivery task only for transient provider errors, never for bugs or auth."""
    try:
        state.result()
    except TransientDeliveryError:
        return True
    except Exception:
        return False
    return False


_channels_lock = threading.Lock()
#: The channels built so far and the settings root they were built from.
_channels: tuple[Settings | None, dict[str, Channel]] = (None, {})


def channel_for(name: str) -> Channel:
    """The process-wide channel object for ``name`` (keeps SDK connections alive).

    Built once per settings root from its ``channels`` section: after
    :func:`dunning.config.reload_settings` (a notebook or test that changed its settings) the
    next call builds the channel from the new settings. Raises ConfigError like
    :func:`dunning.channels.get_channel` (nothing is kept then).
    """
    global _channels
    settings = get_settings()
    with _channels_lock:
        built_for, built = _channels
        if built_for is not settings:
            built = {}
            _channels = (settings, built)
        channel = built.get(name)
        if channel is None:
            channel = built[name] = get_channel(name, settings.channels)
        return channel


@task(
    name="record-plan",
    description="Add the plan's send lines to the ledger as planned rows.",
    # Side effects every time: never served from a cache, and no hashing of the inputs.
    cache_policy=NO_CACHE,
)
def record_plan(
    sends: pd.DataFrame,
    run_id: str,
    as_of: dt.datetime,
    per_customer: frozenset[str] | set[str] = frozenset(),
) -> tuple[list[list[int]], list[list[int]]]:
    """The planned ledger rows for this run's send lines as (id lists grouped by invoice, id
    lists grouped by customer): the customers in ``per_customer`` (one message per customer)
    are grouped by customer, every other one by invoice."""
    engine = get_engine()
    ids = ledger.record_plan(engine, sends, run_id=run_id, as_of=as_of)
    if not per_customer:
        return ledger.by_invoice(engine, ids), []
    mine = set(ledger.ids_of_customers(engine, ids, sorted(per_customer)))
    return (
        ledger.by_invoice(engine, [i for i in ids if i not in mine]),
        ledger.by_customer(engine, sorted(mine)),
    )


@task(
    name="reconcile-stale-claims",
    description="Settle claims left by a crashed run.",
    # Side effects every time: never served from a cache, and no hashing of the inputs.
    cache_policy=NO_CACHE,
)
def reconcile_stale_claims() -> dict[str, int]:
    """Counts of stale claims found sent, released and marked unknown."""
    return reconcile.reconcile_stale(get_engine(), {name: _finder(name) for name in CHANNELS})


def _finder(name: str) -> reconcile.Finder:
    """Asks channel ``name``'s provider about a stale claim; the channel is built on first use,
    so a channel nobody uses (voice without its settings) costs nothing and fails nothing."""

    def find(claim: StaleClaim) -> str | None:
        try:
            channel = channel_for(name)
        except ConfigError:
            raise NotImplementedError from None  # cannot ask: the row becomes unknown
        finder = getattr(channel, "find_sent", None)
        if finder is None:
            raise NotImplementedError
        return finder(claim)  # type: ignore[no-any-return]

    return find


class _Channels(dict[str, Channel]):
    """The channels of a batch, each built when a message needs it (see _finder)."""

    def __missing__(self, name: str) -> Channel:
        self[name] = channel_for(name)
        return self[name]


@task(
    name="deliver-batch",
    cache_policy=NO_CACHE,
    description="Claim, render, send and record one batch of reminders.",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=_only_transient,
)
def deliver(
    reminder_ids: list[int],
    claimer: str,
    min_balance: MinBalance,
    as_of: dt.datetime,
    per_customer: bool = False,
    policy: Policy | None = None,
) -> BatchResult:
    """Send the batch's still-planned reminders; raises TransientDeliveryError to be retried.

    ``per_customer``: the batch holds whole customers whose policy says consolidate =
    "customer": one message per customer and channel (see ``deliver_batch``).
    ``min_balance``: the run's policy's ``Policy.min_balance_for`` (currency -> the minimum
    balance worth a reminder, major units), re-checked when each reminder is claimed.
    ``policy``: the run's policy; its ladder ranks the stages of a consolidated message (None:
    the default policy).
    """
    settings = get_settings().channels
    result = deliver_batch(
        get_engine(),
        reminder_ids,
        claimer=claimer,
        channels=_Channels(),
        # Why one settings object per batch: reading them from the environment per message
        # was the largest cost of delivery (pydantic-settings parses the env every time).
        compose=partial(compose, settings=settings),
        compose_group=(
            partial(compose_group, settings=settings, policy=policy) if per_customer else None
        ),
        # A large batch composes in worker processes, beside the delivery threads.
        compose_many=partial(compose_units, settings=settings, grouped=per_customer, policy=policy),
        policy=policy,
        lease_seconds=get_settings().lease_seconds,
        min_balance=min_balance,
        as_of=as_of,
    )
    if result.transient:
        if result.retry_after:
            # The provider said when to come back; wait that long (bounded) before retrying.
            time.sleep(min(result.retry_after, 30.0))
        raise TransientDeliveryError(result)
    return result

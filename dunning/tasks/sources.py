"""Source tasks: thin Prefect shells over dunning.sources (sync, freshness)."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from dunning.db import get_engine
from dunning.db.models import utcnow
from dunning.sources.config import load_sources
from dunning.sources.freshness import stale_sources
from dunning.sources.registry import build_source
from dunning.sources.sync import sync_source


@task(
    name="sync-source",
    description="Sync one source into the database.",
    cache_policy=NO_CACHE,
    retries=1,
    retry_delay_seconds=30,
)
def sync_one(name: str, full: bool = False) -> dict[str, Any]:
    """The sync report of source ``name`` as a dict; raises SyncFailed (retried once)."""
    config = load_sources()[name]
    report = sync_source(get_engine(), build_source(config), full=full)
    get_run_logger().info(
        "%s: %d inserted, %d updated, %d unchanged, %d quarantined, %d request(s)",
        name,
        report.total("inserted"),
        report.total("updated"),
        report.total("unchanged"),
        report.total("quarantined"),
        report.requests,
    )
    return report.as_dict()


@task(
    name="refresh-stale-sources",
    cache_policy=NO_CACHE,
    description="Sync the sources whose data is older than their maximum age.",
)
def refresh_stale_sources() -> dict[str, str]:
    """The sources still stale after syncing the stale ones, with why (name -> text).

    Freshness is wall-clock time, not the run's as-of: a sync happened when it happened.
    A failed sync leaves its source stale; its reminders are then deferred, not sent.
    """
    log = get_run_logger()
    engine = get_engine()
    configs = load_sources()
    stale = stale_sources(engine, configs, utcnow())
    tried = [name for name in stale if name in configs]
    for name in tried:
        try:
            sync_one.fn(name)
        except Exception as exc:  # noqa: BLE001 - one failing source must not stop the run
            log.warning("source %s could not be synced: %s", name, exc)
    if tried:  # otherwise nothing changed since the check (a scan of the open invoices)
        stale = stale_sources(engine, configs, utcnow())
    still = {name: str(why) for name, why in stale.items()}
    for text in still.values():
        log.warning("stale source, its reminders are deferred (source_stale): %s", text)
    return still


@task(
    name="stale-sources",
    cache_policy=NO_CACHE,
    description="The sources whose data is older than their maximum age.",
)
def check_stale_sources() -> dict[str, str]:
    """The stale sources right now (name -> why), syncing nothing."""
    engine = get_engine()
    return {name: str(why) for name, why in stale_sources(engine, load_sources(), utcnow()).items()}

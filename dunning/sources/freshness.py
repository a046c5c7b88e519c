"""Freshness: a reminder never goes out on payment data older than its source's maximum age.

A source is stale when its last successful sync is older than ``max_age_minutes`` (or it
never synced). Invoices of a source that is not in sources.toml are stale too, except those
of ``files`` (CSV/Excel imports through `dunning import`, the seed, and every row that
existed before sources did): an import is a push, there is nothing to be behind.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine, select

from dunning.core.skip import SkipReason
from dunning.db.models import Invoice
from dunning.sources.config import SourceConfig
from dunning.sources.state import all_states

#: The plan's reason for a reminder held back because its source is stale.
#: The source of `dunning import` rows and of rows from before sources: never stale.
IMPORTS = "files"


@dataclass(frozen=True)
class Staleness:
    """Why one source is stale: never synced, last success too old, or not configured."""

    source: str
    last_success_at: dt.datetime | None
    max_age_minutes: int | None

    def __str__(self) -> str:
        if self.max_age_minutes is None:
            return f"{self.source}: not in sources.toml (its invoices cannot be synced)"
        if self.last_success_at is None:
            return f"{self.source}: never synced (run `dunning sync {self.source}`)"
        return (
            f"{self.source}: last synced {self.last_success_at.isoformat()}, older than "
            f"{self.max_age_minutes} min"
        )


def stale_sources(
    engine: Engine, configs: dict[str, SourceConfig], now: dt.datetime
) -> dict[str, Staleness]:
    """The stale sources at ``now`` (UTC), by name: configured ones past their maximum age,
    and sources of open invoices that sources.toml no longer lists (except ``files``)."""
    states = all_states(engine)
    stale: dict[str, Staleness] = {}
    for name, config in configs.items():
        last = (states.get(name) or {}).get("last_success_at")
        if last is None or now - last > dt.timedelta(minutes=config.max_age_minutes):
            stale[name] = Staleness(name, last, config.max_age_minutes)
    with engine.connect() as conn:
        used = conn.scalars(
            select(Invoice.source).where(Invoice.status.in_(("open", "disputed"))).distinct()
        ).all()
    for name in used:
        if name != IMPORTS and name not in configs:
            last = (states.get(name) or {}).get("last_success_at")
            stale[name] = Staleness(name, last, None)
    return stale


def stale_invoice_ids(engine: Engine, sources: list[str]) -> list[int]:
    """The ids of the open or disputed invoices of ``sources``."""
    if not sources:
        return []
    with engine.connect() as conn:
        return list(
            conn.scalars(
                select(Invoice.id).where(
                    Invoice.source.in_(sources), Invoice.status.in_(("open", "disputed"))
                )
            )
        )


def defer_stale(
    lines: pd.DataFrame, invoice_ids: list[int], as_of: dt.datetime, retry_minutes: int = 15
) -> pd.DataFrame:
    """The plan with every send for ``invoice_ids`` deferred (reason ``source_stale``, not
    before ``as_of`` plus ``retry_minutes``); other lines unchanged."""
    if not invoice_ids or lines.empty:
        return lines
    out = lines.copy()
    for col in ("action", "reason"):
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(object)
    held = (out["action"] == "send") & out["invoice_id"].isin(invoice_ids)
    out.loc[held, "action"] = "defer"
    out.loc[held, "reason"] = SkipReason.SOURCE_STALE.value
    if "not_before" in out.columns:
        out.loc[held, "not_before"] = pd.Timestamp(as_of) + pd.Timedelta(minutes=retry_minutes)
    return out

"""The run record: one ``reminder_runs`` row per reminder flow run (its as-of instant, when
it started and finished, its counts and, for a shard run, its compact outcomes).

This module is the only writer of ``reminder_runs``: the flow starts the record before it
records a plan, the report task finishes it, a shard run stores its outcomes there (its
coordinator, on any machine sharing the database, reads them back with :func:`stored_report`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Engine, insert, select, update

from dunning.db.models import ReminderRun, utcnow
from dunning.report import RunReport


def start_run(engine: Engine, flow_run_id: str, as_of: dt.datetime) -> int | None:
    """The id of a new run record for the (not dry) run ``flow_run_id`` acting as of
    ``as_of`` (UTC), started now."""
    with engine.begin() as conn:
        key = conn.execute(
            insert(ReminderRun).values(
                flow_run_id=flow_run_id, as_of=as_of, dry_run=False, started_at=utcnow()
            )
        ).inserted_primary_key
    return int(key[0]) if key else None


def finish_run(engine: Engine, run_row_id: int, counts: dict[str, Any]) -> None:
    """Nothing; marks the run record ``run_row_id`` finished now with the report's ``counts``
    (``RunReport.to_json()["counts"]``)."""
    with engine.begin() as conn:
        conn.execute(
            update(ReminderRun)
            .where(ReminderRun.id == run_row_id)
            .values(finished_at=utcnow(), counts=counts)
        )


def store_outcomes(engine: Engine, run_row_id: int | None, report: RunReport) -> None:
    """Nothing; writes a shard run's compact outcomes (``RunReport.to_compact``) to its run
    record ``run_row_id`` (a new, finished record for a dry run, which has none), where its
    coordinator on any machine reads them."""
    compact = report.to_compact()
    with engine.begin() as conn:
        if run_row_id is not None:
            conn.execute(
                update(ReminderRun).where(ReminderRun.id == run_row_id).values(outcomes=compact)
            )
            return
        conn.execute(
            insert(ReminderRun).values(
                flow_run_id=report.flow_run_id,
                as_of=report.as_of,
                dry_run=report.dry_run,
                started_at=utcnow(),
                finished_at=utcnow(),
                counts=report.counts(),
                outcomes=compact,
            )
        )


def stored_report(engine: Engine, flow_run_id: uuid.UUID | str | None) -> RunReport | None:
    """The report the shard run ``flow_run_id`` stored (its latest attempt), or None."""
    if flow_run_id is None:
        return None
    with engine.connect() as conn:
        compact = conn.scalar(
            select(ReminderRun.outcomes)
            .where(ReminderRun.flow_run_id == str(flow_run_id))
            .order_by(ReminderRun.id.desc())
            .limit(1)
        )
    return RunReport.from_compact(compact) if compact else None

"""Per-source sync state (cursor, last success, last error) and the quarantine table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from dunning.db.models import SourceQuarantine, SourceState, utcnow

_CHUNK = 500


def load_state(conn: Connection, name: str) -> dict[str, Any] | None:
    """The stored state row of source ``name`` as a dict, or None before its first sync."""
    row = conn.execute(select(SourceState).where(SourceState.source == name)).first()
    return dict(row._mapping) if row else None


def all_states(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every stored source state, by source name."""
    with engine.connect() as conn:
        rows = conn.execute(select(SourceState.__table__)).mappings()
        return {r["source"]: dict(r) for r in rows}


def save_state(conn: Connection, name: str, kind: str, **values: Any) -> None:
    """Nothing; inserts or updates source ``name``'s state with ``values``."""
    table: Table = SourceState.__table__  # type: ignore[assignment]
    dialect = conn.dialect.name
    row = {"source": name, "kind": kind, **values}
    if dialect in ("postgresql", "sqlite"):
        ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
        conn.execute(
            ins.values(row).on_conflict_do_update(
                index_elements=["source"], set_={"kind": kind, **values}
            )
        )
        return
    if (
        conn.execute(
            update(table).where(table.c.source == name).values(kind=kind, **values)
        ).rowcount
        == 0
    ):  # type: ignore[attr-defined]
        conn.execute(table.insert().values(row))


def record_failure(engine: Engine, name: str, kind: str, error: str) -> None:
    """Nothing; stores ``error`` (already free of secrets) as the source's last error."""
    with engine.begin() as conn:
        save_state(conn, name, kind, last_attempt_at=utcnow(), last_error=error[:500])


def quarantine(
    conn: Connection, name: str, record_type: str, reasons: dict[str, str], now: dt.datetime
) -> None:
    """Nothing; stores or refreshes one quarantine row per source id in ``reasons``."""
    if not reasons:
        return
    table: Table = SourceQuarantine.__table__  # type: ignore[assignment]
    known: set[str] = set()
    ids = sorted(reasons)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        known.update(
            conn.scalars(
                select(table.c.source_id).where(
                    table.c.source == name,
                    table.c.record_type == record_type,
                    table.c.source_id.in_(chunk),
                )
            )
        )
    fresh = [
        {
            "source": name,
            "record_type": record_type,
            "source_id": sid,
            "reason": reasons[sid][:1000],
            "first_seen_at": now,
            "last_seen_at": now,
        }
        for sid in ids
        if sid not in known
    ]
    if fresh:
        conn.execute(table.insert(), fresh)
    for sid in known:
        conn.execute(
            update(table)
            .where(
                table.c.source == name, table.c.record_type == record_type, table.c.source_id == sid
            )
            .values(reason=reasons[sid][:1000], last_seen_at=now)
        )


def release(conn: Connection, name: str, record_type: str, source_ids: Iterable[str]) -> None:
    """Nothing; drops the quarantine rows of records that are now valid."""
    table: Table = SourceQuarantine.__table__  # type: ignore[assignment]
    ids = sorted(set(source_ids))
    for start in range(0, len(ids), _CHUNK):
        conn.execute(
            delete(table).where(
                table.c.source == name,
                table.c.record_type == record_type,
                table.c.source_id.in_(ids[start : start + _CHUNK]),
            )
        )


def release_unlisted(conn: Connection, name: str, record_type: str, listed: set[str]) -> None:
    """Nothing; after a full pull, drops quarantine rows of records the source no longer has."""
    table: Table = SourceQuarantine.__table__  # type: ignore[assignment]
    stored = conn.scalars(
        select(table.c.source_id).where(table.c.source == name, table.c.record_type == record_type)
    ).all()
    release(conn, name, record_type, [sid for sid in stored if sid not in listed])


def quarantined(engine: Engine, name: str | None = None) -> list[dict[str, Any]]:
    """The quarantined records (of source ``name``, or all), newest first."""
    table: Table = SourceQuarantine.__table__  # type: ignore[assignment]
    stmt = select(table).order_by(table.c.last_seen_at.desc(), table.c.id)
    if name:
        stmt = stmt.where(table.c.source == name)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def quarantine_counts(engine: Engine) -> dict[str, int]:
    """The number of quarantined records per source."""
    table: Table = SourceQuarantine.__table__  # type: ignore[assignment]
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.source, func.count()).group_by(table.c.source))
        return {str(name): int(n) for name, n in rows}

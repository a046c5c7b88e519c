"""The SQL source: any database SQLAlchemy reaches, mapped by one query per record type.

Each query returns columns named like the CSV import's columns (``SELECT cust_no AS
customer_id, ...``). An optional ``updated_at`` column makes syncs incremental: the next sync
asks only for rows with ``updated_at`` at or after the newest one seen (at-or-after, because
rows committed later with the same timestamp must not be missed; re-reading one is harmless).
An optional ``source_id`` column gives payments and attempts an id of their own; without it
a payment is identified by its invoice, time and amount, like a CSV row.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from dunning.errors import ConfigError
from dunning.masking import scrub
from dunning.sources.base import ID_COLUMNS, RECORD_TYPES, Pull, PullProgress, Record, SourceError
from dunning.sources.config import SourceConfig

_META = ("updated_at", "source_id")


class SqlSource:
    """Reads customers, invoices, payments and attempts with the queries in sources.toml."""

    kind = "sql"

    def __init__(self, config: SourceConfig) -> None:
        self.name = config.name
        self.config = config
        self.queries = {t: str(config.get(t)) for t in RECORD_TYPES if config.get(t)}

    def _engine(self) -> Engine:
        url = self.config.get("url") or self.config.secret("url")
        if not url:
            raise ConfigError(f"[sources.{self.name}]: no database URL; set url_env")
        try:
            return create_engine(str(url))
        except (ArgumentError, ImportError, SQLAlchemyError) as exc:
            raise ConfigError(
                f"[sources.{self.name}]: the database URL is not usable "
                f"({type(exc).__name__}); check it (e.g. "
                "postgresql+psycopg://user@host/db)"
            ) from None

    def check(self) -> str:
        """A line saying the database answered and each query's row count."""
        engine = self._engine()
        parts = []
        try:
            with engine.connect() as conn:
                for record_type, query in self.queries.items():
                    n = conn.execute(text(f"SELECT COUNT(*) FROM ({query}) AS src")).scalar()
                    parts.append(f"{record_type}: {n} row(s)")
        except SQLAlchemyError as exc:
            raise SourceError(_explain(self.name, "a query", exc)) from None
        finally:
            engine.dispose()
        return f"{engine.dialect.name} database answered; " + ", ".join(parts)

    def pull(self, cursor: str | None, progress: PullProgress | None = None) -> Pull:
        """Every row of each query, or those updated since ``cursor`` for queries that return
        ``updated_at``; the cursor is the newest ``updated_at`` per record type (JSON)."""
        marks: dict[str, Any] = json.loads(cursor) if cursor else {}
        pull = Pull()
        engine = self._engine()
        try:
            with engine.connect() as conn:
                for record_type, query in self.queries.items():
                    since = marks.get(record_type)
                    sql, params = query, {}
                    if since is not None:
                        sql = f"SELECT * FROM ({query}) AS src WHERE src.updated_at >= :since"
                        params = {"since": _from_mark(since)}
                    try:
                        result = conn.execute(text(sql), params)
                    except SQLAlchemyError as exc:
                        raise SourceError(
                            _explain(self.name, f"the {record_type} query", exc)
                        ) from None
                    pull.requests += 1
                    columns = [c.lower() for c in result.keys()]
                    newest = since
                    for values in result:
                        row = dict(zip(columns, values, strict=True))
                        stamp = row.get("updated_at")
                        if stamp is not None and (
                            newest is None or _mark(stamp)["v"] > newest["v"]
                        ):
                            newest = _mark(stamp)
                        pull.add(record_type, _record(self.name, record_type, row))
                    if progress:
                        progress(record_type, len(pull.records[record_type]))
                    if "updated_at" in columns:
                        marks[record_type] = newest
        except SQLAlchemyError as exc:
            raise SourceError(_explain(self.name, "the database", exc)) from None
        finally:
            engine.dispose()
        pull.complete = "invoices" not in (json.loads(cursor) if cursor else {})
        pull.cursor = json.dumps(marks, sort_keys=True) if marks else None
        return pull


def _record(name: str, record_type: str, row: dict[str, Any]) -> Record:
    values = {k: v for k, v in row.items() if k not in _META}
    own = row.get("source_id")
    if own is not None:
        money = record_type in ("payments", "payment_attempts")
        return Record(str(own), values, external_id=f"{name}:{own}" if money else None)
    return Record(":".join(_id_part(row.get(c)) for c in ID_COLUMNS[record_type]), values)


def _id_part(value: Any) -> str:
    """A stable text for an id column (2026-01-05 and a datetime at midnight agree)."""
    if isinstance(value, dt.datetime):
        value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, (Decimal, float)):
        return format(Decimal(str(value)).normalize(), "f")
    return "" if value is None else str(value).strip()


def _mark(stamp: Any) -> dict[str, Any]:
    """A JSON-able cursor mark of an ``updated_at`` value, comparable within one type."""
    if isinstance(stamp, dt.datetime):
        aware = stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
        return {
            "t": "datetime",
            "v": aware.astimezone(dt.UTC).isoformat(),
            "naive": stamp.tzinfo is None,
        }
    if isinstance(stamp, dt.date):
        return {"t": "date", "v": stamp.isoformat()}
    if isinstance(stamp, (int, float, Decimal)):
        return {"t": "number", "v": float(stamp)}
    # Text (SQLite keeps timestamps as text): compared as the database compares it.
    return {"t": "text", "v": str(stamp)}


def _from_mark(mark: dict[str, Any]) -> Any:
    """The bind value of a cursor mark, of the type the database returned."""
    if mark["t"] == "datetime":
        value = dt.datetime.fromisoformat(mark["v"])
        return value.replace(tzinfo=None) if mark.get("naive") else value
    if mark["t"] == "date":
        return dt.date.fromisoformat(mark["v"])
    return mark["v"]


def _explain(name: str, what: str, exc: SQLAlchemyError) -> str:
    detail = scrub(str(getattr(exc, "orig", exc)).strip().splitlines()[0])[:300]
    return (
        f"source {name}: {what} failed ({detail}); run the query in your database client "
        "and fix it in sources.toml"
    )

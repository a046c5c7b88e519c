"""Database access: engines, sessions and migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from dunning.config import get_settings
from dunning.db.sqlite_writes import serialize_writes
from dunning.errors import DatabaseUnavailable

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    """A new engine for ``url``; SQLite gets WAL, foreign keys, a busy timeout (30 s) and
    one writer at a time among the process's threads (``serialize_writes``)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            parent = Path(path).parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnavailable(
                    f"cannot create the database directory {parent}: {exc.strerror}; "
                    "check DUNNING_DATABASE_URL or DUNNING_HOME"
                ) from None
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # Threads of one process (a run's delivery tasks) queue for the write lock instead of
        # sleeping in SQLite's busy handler (dunning.db.sqlite_writes).
        serialize_writes(engine, timeout_s=30.0)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        # psycopg is the `postgres` extra: a plain `pip install dunning` has SQLite only.
        raise DatabaseUnavailable(
            f"DUNNING_DATABASE_URL needs the database driver {exc.name!r}, which is not "
            "installed: for PostgreSQL install dunning with its extra, "
            "pip install 'dunning[postgres]'"
        ) from None


def get_engine(url: str | None = None) -> Engine:
    """The cached engine for ``url`` (default: the database configured right now)."""
    return _cached_engine(url or get_settings().resolved_database_url)


@lru_cache(maxsize=8)
def _cached_engine(url: str) -> Engine:
    return make_engine(url)


get_engine.cache_clear = _cached_engine.cache_clear  # type: ignore[attr-defined]


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    factory = sessionmaker(bind=engine or get_engine(), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Any:
    """An Alembic Config pointing at our migrations and ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Migrate the database at ``url`` (default: configured) to ``revision``."""
    from alembic import command

    url = url or get_settings().resolved_database_url
    try:
        command.upgrade(alembic_config(url), revision)
    except OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot reach the database at {redact_url(url)}: {exc.orig}. "
            "Check DUNNING_DATABASE_URL and that the server is running."
        ) from None


def check_ready(engine: Engine) -> None:
    """Raise DatabaseUnavailable unless the database answers and is migrated."""
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    except OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot reach the database at {redact_url(str(engine.url))}: {exc.orig}. "
            "Check DUNNING_DATABASE_URL and that the server is running."
        ) from None
    if "reminders" not in tables:
        raise DatabaseUnavailable(
            f"the database at {redact_url(str(engine.url))} is not migrated: "
            "run `dunning db upgrade` first."
        )


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ***."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database url>"


def analyze(bind: Engine | Connection, tables: tuple[str, ...] = ()) -> None:
    """Refresh the query planner's statistics after a bulk write: of ``tables`` (names of
    tables in the dunning schema), or of every table when empty.

    A freshly loaded table has none (PostgreSQL's autovacuum gets to it a minute or more later,
    SQLite never), so the planner guesses row counts and picks full scans or nested loops: the
    first line of `dunning plan` at 1M invoices on PostgreSQL took 45.8 s before ANALYZE and
    18 s after, and an hourly run's read of a just-written segmentation snapshot (200k rows,
    guessed as 1) ran for over ten minutes. PostgreSQL: ``ANALYZE`` (a sample of each table,
    ~1 s for all of them at 1M invoices). SQLite: ``ANALYZE`` with ``PRAGMA
    analysis_limit=1000`` (each index sampled, not scanned whole), which fills
    ``sqlite_stat1``. Other dialects: nothing. ``bind``: an engine (its own transaction) or a
    connection (inside the caller's). Raises ValueError for a name that is not a plain
    identifier; otherwise what the driver raises.
    """
    for name in tables:
        if not name.isidentifier():
            raise ValueError(f"analyze: {name!r} is not a table name")
    dialect = bind.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        return
    statements = [f"ANALYZE {name}" for name in tables] or ["ANALYZE"]
    if dialect == "sqlite":
        statements.insert(0, "PRAGMA analysis_limit=1000")
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    else:
        for statement in statements:
            bind.execute(text(statement))

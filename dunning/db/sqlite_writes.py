"""One writer at a time per SQLite engine inside a process: threads queue on a Python lock
instead of sleeping in SQLite's busy handler.

Why: SQLite lets one connection write at a time. A connection that finds the database locked
retries in SQLite's default busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50,
50 and then 100 ms between tries (``sqliteDefaultBusyCallback`` in SQLite's ``main.c``) until
the busy timeout. A run's delivery tasks share one process and one engine; each batch's claim
and record are short write transactions, so the lock was free again after a few
milliseconds while the waiting threads slept for up to 100 ms. At 19,319 messages in batches
of 500 with four tasks at once, one run took 134 s with the busy handler and 83 to 88 s with
the writers queued on this lock (30 Nov 2026, a 2-core sandboxed machine; docs/performance.md).

How: a transaction takes the engine's lock before its first write statement (INSERT, UPDATE,
DELETE, REPLACE, DDL, ANALYZE) and gives it back when it commits or rolls back (or its
connection goes back to the pool). Reads never take it: WAL lets them run beside a writer.
A thread that already holds the lock through another connection does not wait for itself
(SQLite's busy timeout applies there, as before), and a lock not obtained within the busy
timeout lets the statement go on to SQLite, which then decides as it did before. Other
processes writing the same file still meet SQLite's own locking and busy timeout.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, event

#: The first word of a statement that writes (needs SQLite's write lock).
_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER"})
_WRITES |= {"ANALYZE", "REINDEX", "VACUUM"}
_HELD = "dunning_sqlite_write_lock"


class WriteLock:
    """The write lock of one engine: a plain lock that knows its holder thread."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self.holder: int | None = None

    def acquire(self) -> bool:
        """Take the lock for the calling thread; False (not taken) when this thread already
        holds it through another connection, or when it stayed busy for ``timeout_s``."""
        me = threading.get_ident()
        if self.holder == me:
            return False
        if not self._lock.acquire(timeout=self.timeout_s):
            return False
        self.holder = me
        return True

    def release(self) -> None:
        """Give the lock back (by whichever thread ends the transaction)."""
        self.holder = None
        self._lock.release()


def _writes(statement: str) -> bool:
    head = statement.lstrip().split(None, 1)
    return bool(head) and head[0].upper() in _WRITES


def serialize_writes(engine: Engine, timeout_s: float = 30.0) -> WriteLock:
    """Queue ``engine``'s write transactions on one in-process lock (see the module's text);
    ``timeout_s``: how long a writer waits for the lock before going on to SQLite's own busy
    handling (the engine's busy timeout, seconds). Returns the lock (tests read ``holder``).
    Only for SQLite engines; ValueError for another dialect."""
    if engine.dialect.name != "sqlite":
        raise ValueError(f"serialize_writes is for SQLite engines, not {engine.dialect.name}")
    lock = WriteLock(timeout_s)

    def take(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if conn.info.get(_HELD) or not _writes(statement):
            return
        if lock.acquire():
            conn.info[_HELD] = True

    def taken_in_autocommit(conn: Any, cursor: Any, *_: Any) -> None:
        # A write outside a transaction (driver autocommit) is already committed.
        if conn.info.get(_HELD) and not cursor.connection.in_transaction:
            give(conn)

    def give_back(info: dict[str, Any]) -> None:
        # ``info``: the pooled connection's (Connection.info is its record's info).
        if info.pop(_HELD, False):
            lock.release()

    def give(conn: Any, *_: Any) -> None:
        give_back(conn.info)

    def end(how: str) -> Any:
        def handler(conn: Any) -> None:
            # This event comes before SQLAlchemy ends the transaction; ending it here first
            # hands the lock on only once SQLite's own lock is free (else the next writer
            # could still meet it and sleep in the busy handler). SQLAlchemy's own commit or
            # rollback that follows finds no transaction and does nothing; should this one
            # fail, that one runs it again and raises the error in SQLAlchemy's form.
            if not conn.info.get(_HELD):
                return
            try:
                getattr(conn.connection.dbapi_connection, how)()
            except Exception:  # noqa: BLE001, S110 - SQLAlchemy's own call reports it
                pass
            finally:
                give(conn)

        return handler

    def give_at_checkin(_dbapi: Any, record: Any) -> None:
        if record is not None:
            give_back(record.info)

    event.listen(engine, "before_cursor_execute", take)
    event.listen(engine, "after_cursor_execute", taken_in_autocommit)
    event.listen(engine, "commit", end("commit"))
    event.listen(engine, "rollback", end("rollback"))
    event.listen(engine, "checkin", give_at_checkin)
    return lock

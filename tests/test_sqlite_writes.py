"""One writer at a time per SQLite engine inside a process (dunning.db.sqlite_writes), on real
SQLite files: threads queue on the engine's lock instead of meeting "database is locked", the
lock is given back however a transaction ends, and reads never wait for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from dunning.db import make_engine
from dunning.db.sqlite_writes import WriteLock, serialize_writes


def _no_busy_wait(engine: Engine) -> Engine:
    """``engine`` with SQLite's busy timeout at 0: a writer that meets the database locked
    fails at once instead of retrying (so a second writer inside the lock shows)."""

    def zero(dbapi: Any, _record: Any) -> None:
        dbapi.execute("PRAGMA busy_timeout=0")

    event.listen(engine, "connect", zero)
    return engine


def _table(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER UNIQUE, v TEXT)"))


def _raw_engine(tmp_path: Path, timeout_s: float = 5.0) -> tuple[Engine, WriteLock]:
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}", connect_args={"timeout": 0})
    event.listen(engine, "connect", lambda c, _r: c.execute("PRAGMA journal_mode=WAL"))
    lock = serialize_writes(engine, timeout_s=timeout_s)
    _table(engine)
    return engine, lock


def test_threads_writing_at_once_never_meet_a_locked_database(tmp_path: Path) -> None:
    """Eight threads, 25 write transactions each, every transaction holding SQLite's write
    lock across a sleep: with no busy timeout at all, any second writer SQLite saw would fail
    with "database is locked". Every row arrives."""
    engine = _no_busy_wait(make_engine(f"sqlite:///{tmp_path / 'd.db'}"))
    _table(engine)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(25):
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO t (n, v) VALUES (:n, 'x')"), {"n": k * 100 + i})
                    time.sleep(0.001)  # the GIL goes to the other writers meanwhile
                    conn.execute(text("UPDATE t SET v = 'y' WHERE n = :n"), {"n": k * 100 + i})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), min(v), max(v) FROM t")).one() == (200, "y", "y")


ENDINGS: dict[str, Callable[[Engine], None]] = {}


def _ending(name: str) -> Callable[[Callable[[Engine], None]], Callable[[Engine], None]]:
    def register(fn: Callable[[Engine], None]) -> Callable[[Engine], None]:
        ENDINGS[name] = fn
        return fn

    return register


@_ending("commit")
def _commit(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (n) VALUES (1)"))


@_ending("rollback")
def _rollback(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("INSERT INTO t (n) VALUES (2)"))
        conn.rollback()


@_ending("error")
def _error(engine: Engine) -> None:
    _commit(engine)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO t (n) VALUES (3)"))
        conn.execute(text("INSERT INTO t (n) VALUES (1)"))  # unique n


@_ending("closed without commit")
def _closed(engine: Engine) -> None:
    conn = engine.connect()
    conn.execute(text("UPDATE t SET v = 'z'"))
    conn.close()


@_ending("orm session")
def _session(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        s.execute(text("INSERT INTO t (n) VALUES (4)"))


@_ending("driver autocommit")
def _autocommit(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("INSERT INTO t (n) VALUES (5)"))
        assert conn.execute(text("SELECT count(*) FROM t WHERE n = 5")).scalar_one() == 1


@_ending("read only")
def _read(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("SELECT count(*) FROM t")).scalar_one()


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_the_lock_is_given_back_however_the_transaction_ends(tmp_path: Path, ending: str) -> None:
    engine, lock = _raw_engine(tmp_path)
    ENDINGS[ending](engine)
    assert lock.holder is None
    assert lock.acquire()  # free: taken at once, not after the timeout
    lock.release()
    # And SQLite's own lock is free too: a writer with no busy timeout gets through.
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (n) VALUES (99)"))


def test_reads_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    """While one thread holds a write transaction open, another thread reads the last
    committed state at once (WAL), without waiting for the write lock."""
    engine, lock = _raw_engine(tmp_path, timeout_s=60.0)
    _commit(engine)
    holding, done = threading.Event(), threading.Event()

    def writer() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (n) VALUES (7)"))
            holding.set()
            done.wait(30)

    t = threading.Thread(target=writer)
    t.start()
    assert holding.wait(10)
    assert lock.holder == t.ident
    seen: list[int] = []
    reader = threading.Thread(
        target=lambda: seen.append(
            engine.connect().execute(text("SELECT count(*) FROM t")).scalar_one()
        )
    )
    reader.start()
    reader.join(10)
    finished = not reader.is_alive()
    done.set()
    t.join()
    assert finished and seen == [1]


def test_a_second_connection_of_the_same_thread_goes_to_sqlite_not_to_a_deadlock(
    tmp_path: Path,
) -> None:
    """A thread writing through two connections at once does not wait for its own lock: the
    second write meets SQLite's lock and its busy timeout (here none), as before."""
    engine, lock = _raw_engine(tmp_path, timeout_s=600.0)
    raised: list[BaseException] = []

    def nested() -> None:
        with engine.begin() as first:
            first.execute(text("INSERT INTO t (n) VALUES (1)"))
            try:
                with engine.begin() as second:
                    second.execute(text("INSERT INTO t (n) VALUES (2)"))
            except OperationalError as exc:
                raised.append(exc)

    t = threading.Thread(target=nested, daemon=True)
    t.start()
    t.join(60)  # waiting for its own lock would take the lock's 600 s
    assert not t.is_alive()
    assert len(raised) == 1 and "locked" in str(raised[0])
    assert lock.holder is None


def test_only_for_sqlite() -> None:
    engine = create_engine("postgresql+psycopg://u@127.0.0.1:1/x")
    with pytest.raises(ValueError, match="SQLite"):
        serialize_writes(engine)

"""Shared fixtures.

``engine``/``db_url`` run a test on SQLite and, when DUNNING_TEST_DATABASE_URL is set, on
PostgreSQL too. Each pytest session gets its own PostgreSQL database (created and dropped
here) so parallel sessions never see each other's rows; tables are emptied between tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from dunning import db
from dunning.config import reload_settings
from dunning.db.models import Base
from dunning.devtools.scratch import scratch_database

PG_URL = os.environ.get("DUNNING_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own DUNNING_HOME and no real credentials from the environment."""
    monkeypatch.setenv("DUNNING_HOME", str(tmp_path / "home"))
    for name in list(os.environ):
        if name.startswith(
            (
                "DUNNING_SENDGRID",
                "DUNNING_TWILIO",
                "DUNNING_SMTP",
                "DUNNING_VOICE",
                "DUNNING_WEBHOOK_PUBLIC_URL",
                "DUNNING_HUBSPOT",
                "DUNNING_SALESFORCE",
                "DUNNING_CRM_PATH",
                "SENDGRID_",
                "TWILIO_",
            )
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DUNNING_DATABASE_URL", raising=False)
    reload_settings()
    yield
    reload_settings()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    db.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[str | None]:
    if not PG_URL:
        yield None
        return
    import psycopg

    stack = contextlib.ExitStack()
    try:
        url = stack.enter_context(scratch_database(PG_URL, "dunning_t"))
    except psycopg.OperationalError as exc:
        pytest.fail(f"DUNNING_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {exc}")
    with stack:
        db.upgrade(url)
        yield url
        db.get_engine.cache_clear()


def _truncate_pg(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    _sqlite_template: Path,
    _pg_database: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """A migrated, empty database URL (also exported as DUNNING_DATABASE_URL)."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(_sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        assert _pg_database is not None
        url = _pg_database
        _truncate_pg(db.get_engine(url))
    monkeypatch.setenv("DUNNING_DATABASE_URL", url)
    reload_settings()
    yield url
    if request.param == "sqlite":
        engine = db.get_engine(url)
        engine.dispose()
        db.get_engine.cache_clear()


@pytest.fixture
def engine(db_url: str) -> Engine:
    """The engine of ``db_url``."""
    return db.get_engine(db_url)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One Prefect test server (a real API on SQLite) shared by the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield

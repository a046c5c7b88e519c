"""The database is unavailable at the start or in the middle of a run: the run fails with a
message naming the database and the fix, and nothing is half-written."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from dunning import db
from dunning.devtools.fakes import RunningFakes
from dunning.devtools.faults import pause_files
from tests.conftest import PG_URL
from tests.reliability.support import (
    LEASE_S,
    dunning_run,
    duplicates,
    ledger_rows,
    lost,
    portfolio,
    run_env,
    sent_matches_provider,
    start_run,
    statuses,
    well_formed,
)

pytestmark = [pytest.mark.slow, pytest.mark.prefect]


def _refused(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert "DUNNING_DATABASE_URL" in stderr or "dunning db upgrade" in stderr, stderr


def test_an_unreachable_postgresql_stops_the_run_with_the_fix_and_no_secret(
    fakes: RunningFakes, tmp_path: Path
) -> None:
    url = "postgresql+psycopg://dunning:s3cret-pw@127.0.0.1:1/dunning"  # port 1: nothing listens
    proc = dunning_run(run_env(url, fakes.env(), tmp_path / "home"))
    assert proc.returncode != 0
    _refused(proc.stderr)
    assert "cannot reach the database" in proc.stderr
    assert "127.0.0.1:1" in proc.stderr.replace("\n", "")
    assert "s3cret-pw" not in proc.stderr + proc.stdout
    assert fakes.received() == []


def test_an_unmigrated_sqlite_file_stops_the_run_and_says_to_migrate(
    fakes: RunningFakes, tmp_path: Path
) -> None:
    path = tmp_path / "empty.db"
    proc = dunning_run(run_env(f"sqlite:///{path}", fakes.env(), tmp_path / "home"))
    assert proc.returncode != 0
    _refused(proc.stderr)
    assert "dunning db upgrade" in proc.stderr
    assert fakes.received() == []


def test_a_sqlite_path_that_cannot_exist_stops_the_run_with_a_message(
    fakes: RunningFakes, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the database directory should be")
    proc = dunning_run(run_env(f"sqlite:///{blocker}/dunning.db", fakes.env(), tmp_path / "home"))
    assert proc.returncode != 0
    _refused(proc.stderr)
    assert "not-a-dir" in proc.stderr.replace("\n", "")


if PG_URL:
    # PostgreSQL only: a SQLite file cannot be taken away from a process that has it open
    # (its descriptors keep working), so "the server went away" is a PostgreSQL scenario.

    def test_postgresql_going_away_mid_run_fails_the_run_and_leaves_valid_rows(
        prefect_server: None, fakes: RunningFakes, tmp_path: Path, _pg_database: str
    ) -> None:
        from tests.conftest import _truncate_pg

        url = _pg_database
        engine = db.get_engine(url)
        _truncate_pg(engine)
        planned = portfolio(engine, 3)
        name = str(make_url(url).database)
        admin = db.make_engine(make_url(url).set(database="postgres").render_as_string(False))
        env = run_env(
            url,
            fakes.env(),
            tmp_path / "home",
            DUNNING_FAULT_DIR=str(tmp_path),
            DUNNING_CRASH_AT="after_claim:1:pause",
        )
        paused, resume = pause_files("after_claim", tmp_path)
        proc = start_run(env, "--batch-size", "10")  # one batch: every claim is held at the pause
        try:
            while not paused.exists():
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.1)
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                )
            resume.touch()
            out, err = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            admin.dispose()
        engine.dispose()

        assert proc.returncode != 0
        # The CLI ends on its own message naming the database (Prefect's log above it may
        # carry the task's traceback: that is the engine's log, not the CLI crashing).
        message = err[err.rindex("error:") :]
        assert "Traceback" not in message
        assert name in message.replace("\n", ""), message
        rows = ledger_rows(engine)
        assert len(rows) == planned
        assert well_formed(rows) == []
        assert statuses(rows).get("claimed") == planned  # the claims stand until reconciled

        # Back up: the next run settles the stale claims (e-mail: unknown, reported; SMS: Twilio
        # is asked, and what it never received goes back to planned) and sends nothing twice.
        time.sleep(LEASE_S + 0.5)
        again = dunning_run(run_env(url, fakes.env(), tmp_path / "home"))
        assert again.returncode == 0, again.stderr[-2000:]
        rows = ledger_rows(engine)
        assert well_formed(rows) == [] and lost(rows) == []
        assert duplicates(fakes) == {}
        assert sent_matches_provider(rows, fakes) == []

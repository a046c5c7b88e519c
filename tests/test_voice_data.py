"""Voice data: the voice_consent import column, migration 0004 and the seed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from typer.testing import CliRunner

from dunning import db
from dunning.cli import _load_commands, app
from dunning.db.models import Customer
from dunning.devtools.scratch import scratch_database
from tests.conftest import PG_URL

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_voice_consent_is_imported_and_defaults_to_false(engine, tmp_path):
    _load_commands()
    result = CliRunner().invoke(app, ["import", "customers", str(EXAMPLES / "customers.csv")])
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        consent = dict(conn.execute(select(Customer.customer_id, Customer.voice_consent)).all())
    assert consent == {
        "C-1001": False,
        "C-1002": True,
        "C-1003": False,
        "C-1004": False,
        "C-1005": False,
    }
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "customer_id,country,timezone,locale,voice_consent\nC-9,DE,Europe/Berlin,de_DE,perhaps\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["import", "customers", str(bad)])
    assert result.exit_code != 0 and "voice_consent" in result.output + result.stderr


@pytest.fixture
def fresh_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database (SQLite file, or a new PostgreSQL database) with no schema yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    assert PG_URL is not None
    with scratch_database(PG_URL, "dunning_v") as url:
        try:
            yield url
        finally:
            db.get_engine(url).dispose()


@pytest.mark.parametrize(
    "fresh_url", ["sqlite"] + (["postgresql"] if PG_URL else []), indirect=True
)
def test_migration_0004_adds_voice_columns_without_consent_and_downgrades(fresh_url: str):
    db.upgrade(fresh_url, "0003")
    engine = db.get_engine(fresh_url)
    at = dt.datetime(2026, 11, 24, 10, 0)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO customers (customer_id, shard_key, email_invalid, country, timezone, "
                "locale, sms_consent, email_opt_out, sms_opt_out, created_at, updated_at) VALUES "
                "('OLD-1', 1, false, 'US', 'UTC', 'en_US', true, false, false, :at, :at)"
            ),
            {"at": at},
        )
        conn.execute(
            text(
                "INSERT INTO invoices (invoice_number, customer_id, currency, amount, issued_on, "
                "due_on, status, created_at, updated_at) VALUES ('I-1', 'OLD-1', 'EUR', 1, "
                "'2026-11-01', '2026-11-20', 'open', :at, :at)"
            ),
            {"at": at},
        )
    db.upgrade(fresh_url)
    with engine.connect() as conn:
        row = conn.execute(select(Customer.voice_consent, Customer.voice_opt_out)).one()
        reminder_columns = {c["name"] for c in inspect(conn).get_columns("reminders")}
    assert tuple(row) == (False, False) and "call_outcome" in reminder_columns
    command.downgrade(db.alembic_config(fresh_url), "0003")  # with invoices referencing rows
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("customers")}
    assert not {"voice_consent", "voice_opt_out"} & columns
    engine.dispose()

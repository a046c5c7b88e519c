"""Migration 0005_sources: rows from before sources belong to `files`; it downgrades cleanly."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from sqlalchemy import inspect, text

from dunning import db
from tests.conftest import PG_URL
from tests.test_sharding import fresh_url  # noqa: F401,F811 - the fixture, shared not copied

AT = dt.datetime(2026, 11, 1, 12, 0)


@pytest.mark.parametrize(
    "fresh_url", ["sqlite"] + (["postgresql"] if PG_URL else []), indirect=True
)
def test_existing_rows_become_the_files_source_and_the_migration_downgrades(
    fresh_url: str,  # noqa: F811
) -> None:
    db.upgrade(fresh_url, "0004_voice")
    engine = db.get_engine(fresh_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO customers (customer_id, shard_key, email_invalid, country, timezone, "
                "locale, sms_consent, email_opt_out, sms_opt_out, created_at, updated_at) VALUES "
                "('OLD-1', 1, false, 'US', 'UTC', 'en_US', false, false, false, :at, :at)"
            ),
            {"at": AT},
        )
        conn.execute(
            text(
                "INSERT INTO invoices (invoice_number, customer_id, currency, amount, issued_on, "
                "due_on, status, created_at, updated_at) VALUES ('I-1', 'OLD-1', 'EUR', 1, "
                "'2026-11-01', '2026-11-20', 'open', :at, :at)"
            ),
            {"at": AT},
        )
    db.upgrade(fresh_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT source, source_id FROM invoices")).one() == ("files", None)
        assert conn.execute(text("SELECT source FROM customers")).scalar() == "files"
        tables = set(inspect(conn).get_table_names())
    assert {"source_state", "source_quarantine"} <= tables
    command.downgrade(db.alembic_config(fresh_url), "0004_voice")
    with engine.connect() as conn:
        inspector = inspect(conn)
        assert "source" not in {c["name"] for c in inspector.get_columns("invoices")}
        assert "source_state" not in inspector.get_table_names()
    db.upgrade(fresh_url)
    engine.dispose()

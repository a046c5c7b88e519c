"""reminders.status holds only a ReminderStatus value: the database refuses anything else on
both backends (CHECK ck_reminders_status, migration 0015), and the migration's list is the
enum's, so a new status without a migration fails here."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from dunning import db
from dunning.core.status import ReminderStatus
from tests.conftest import PG_URL
from tests.factories import add_customer, add_invoice
from tests.test_sharding import fresh_url  # noqa: F401 - the fixture, shared not copied

MIGRATION = Path(db.__file__).parent / "migrations" / "versions" / "0015_reminders_status_check.py"
AT = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("m0015", MIGRATION)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migrations_list_is_the_enum() -> None:
    assert _migration().STATUSES == tuple(s.value for s in ReminderStatus)


def _insert(engine: Engine, status: str) -> None:
    with engine.begin() as conn:
        invoice_id = conn.execute(text("SELECT id FROM invoices")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO reminders (invoice_id, customer_id, stage, channel, status, "
                "attempts, planned_at, created_at, updated_at) VALUES "
                "(:inv, 'C1', :stage, 'email', :status, 0, :at, :at, :at)"
            ),
            {"inv": invoice_id, "stage": f"s_{status}", "status": status, "at": AT},
        )


def test_an_unknown_status_is_refused(engine: Engine) -> None:
    add_customer(engine, "C1")
    add_invoice(engine, "INV-1", "C1")
    for status in ReminderStatus:
        _insert(engine, status.value)
    for bad in ("sending", "SENT", ""):
        with pytest.raises(IntegrityError, match="ck_reminders_status|CHECK constraint"):
            _insert(engine, bad)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM reminders")).scalar() == len(ReminderStatus)


@pytest.mark.parametrize(
    "fresh_url", ["sqlite"] + (["postgresql"] if PG_URL else []), indirect=True
)
def test_the_migration_adds_and_drops_the_check(fresh_url: str) -> None:  # noqa: F811
    db.upgrade(fresh_url)
    engine = db.get_engine(fresh_url)
    with engine.connect() as conn:
        names = {c["name"] for c in inspect(conn).get_check_constraints("reminders")}
    assert "ck_reminders_status" in names
    command.downgrade(db.alembic_config(fresh_url), "0014_customer_segments")
    engine.dispose()
    with engine.connect() as conn:
        names = {c["name"] for c in inspect(conn).get_check_constraints("reminders")}
    assert "ck_reminders_status" not in names
    db.upgrade(fresh_url)
    engine.dispose()

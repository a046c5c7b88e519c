"""The SQL source against an "ERP" schema with its own names, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from dunning.config import reload_settings
from dunning.db import session_scope
from dunning.db.models import Customer, Invoice, Payment, PaymentAttempt, Reminder
from dunning.errors import ConfigError
from dunning.sources.config import load_sources
from dunning.sources.registry import get_source
from dunning.sources.state import quarantined
from dunning.sources.sync import SyncFailed, sync_source
from tests.sources_support import erp_database, erp_exec, sql_source_toml, write_sources

T0 = dt.datetime(2026, 11, 1, 10, 0)


@pytest.fixture
def erp(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The ERP's engine, with two debtors and three documents; sources.toml points at it."""
    with erp_database(db_url, tmp_path) as (url, erp_engine):
        monkeypatch.setenv("ERP_DATABASE_URL", url)
        monkeypatch.setenv(
            "DUNNING_SOURCES_PATH", str(write_sources(tmp_path / "sources.toml", sql_source_toml()))
        )
        reload_settings()
        erp_exec(
            erp_engine,
            "INSERT INTO debtors VALUES ('D1', 'Acme GmbH', 'ap@acme.example',"
            " 'DE', 'Europe/Berlin', 'de-DE', :t), ('D2', 'Globex', 'ar@globex.example', "
            "'US', 'America/Chicago', 'en_US', :t)",
            t=T0,
        )
        erp_exec(
            erp_engine,
            "INSERT INTO ar_docs VALUES "
            "('R-1', 'D1', 'EUR', 100.00, '2026-10-01', '2026-10-31', 'open', "
            "'https://pay.example.com/r1', :t), "
            "('R-2', 'D1', 'EUR', 50.00, '2026-10-01', '2026-10-31', 'open', NULL, :t), "
            "('R-3', 'D2', 'USD', 75.50, '2026-10-05', '2026-11-04', 'open', NULL, :t)",
            t=T0,
        )
        erp_exec(
            erp_engine,
            "INSERT INTO ar_pay VALUES (7, 'R-2', 50.00, :paid, :t)",
            paid=dt.datetime(2026, 11, 2, 9, 30),
            t=T0,
        )
        erp_exec(
            erp_engine,
            "INSERT INTO ar_tries VALUES ('R-1', :tried, 0, 'card_declined')",
            tried=dt.datetime(2026, 11, 1, 8, 0),
        )
        yield erp_engine


def _sync(engine: Engine, full: bool = False):  # noqa: ANN202 - the report type is obvious
    return sync_source(engine, get_source("erp"), full=full)


def _snapshot(engine: Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {
            "customers": conn.execute(
                select(
                    Customer.customer_id,
                    Customer.email,
                    Customer.locale,
                    Customer.source,
                    Customer.source_id,
                    Customer.updated_at,
                ).order_by(Customer.customer_id)
            ).all(),
            "invoices": conn.execute(
                select(
                    Invoice.invoice_number,
                    Invoice.amount,
                    Invoice.status,
                    Invoice.source,
                    Invoice.source_id,
                    Invoice.updated_at,
                ).order_by(Invoice.invoice_number)
            ).all(),
            "payments": conn.execute(
                select(Payment.external_id, Payment.amount, Payment.paid_at, Payment.source)
            ).all(),
            "attempts": conn.execute(
                select(PaymentAttempt.external_id, PaymentAttempt.failure_code)
            ).all(),
        }


def test_erp_tables_sync_through_the_import_validation_and_a_resync_changes_nothing(
    engine: Engine, erp: Engine
) -> None:
    report = _sync(engine)
    assert report.full
    assert report.counts["customers"]["inserted"] == 2
    assert report.counts["invoices"]["inserted"] == 3
    assert report.counts["payments"]["inserted"] == 1
    assert report.counts["payment_attempts"]["inserted"] == 1
    snap = _snapshot(engine)
    assert [(c[0], c[2], c[3], c[4]) for c in snap["customers"]] == [
        ("D1", "de_DE", "erp", "D1"),
        ("D2", "en_US", "erp", "D2"),
    ]
    # R-2 is settled by the ERP's payment (one payment path: apply_payment marks it paid).
    assert [(i[0], i[1], i[2], i[3]) for i in snap["invoices"]] == [
        ("R-1", Decimal("100.0000"), "open", "erp"),
        ("R-2", Decimal("50.0000"), "paid", "erp"),
        ("R-3", Decimal("75.5000"), "open", "erp"),
    ]
    assert snap["payments"] == [
        ("erp:7", Decimal("50.0000"), dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC), "erp")
    ]
    assert snap["attempts"][0][1] == "card_declined"

    again = _sync(engine)
    assert not again.full
    assert again.total("inserted") == again.total("updated") == 0
    assert _snapshot(engine) == snap
    full = _sync(engine, full=True)
    assert full.total("inserted") == full.total("updated") == 0
    assert full.counts["invoices"]["deleted"] == 0
    assert _snapshot(engine) == snap


def test_incremental_sync_reads_rows_changed_since_the_cursor(engine: Engine, erp: Engine) -> None:
    _sync(engine)
    later = T0 + dt.timedelta(hours=5)
    erp_exec(erp, "UPDATE ar_docs SET total = 120.00, changed = :t WHERE doc_no = 'R-1'", t=later)
    report = _sync(engine)
    # The cursor is T0: rows stamped T0 are read again (unchanged), R-1 is updated.
    assert report.counts["invoices"]["updated"] == 1
    with session_scope(engine) as s:
        assert s.scalar(select(Invoice.amount).where(Invoice.invoice_number == "R-1")) == 120
    again = _sync(engine)
    assert again.counts["invoices"] == {
        "inserted": 0,
        "updated": 0,
        "unchanged": 1,
        "quarantined": 0,
        "deleted": 0,
    }


def test_invalid_records_are_quarantined_with_reason_and_the_sync_goes_on(
    engine: Engine, erp: Engine
) -> None:
    erp_exec(
        erp,
        "INSERT INTO debtors VALUES ('D3', 'Bad', 'not-an-email', 'XX', 'Mars/Base', 'en_US', :t)",
        t=T0,
    )
    erp_exec(
        erp,
        "INSERT INTO ar_docs VALUES ('R-4', 'D3', 'EUR', 1.00, '2026-10-01', "
        "'2026-10-31', 'open', NULL, :t), ('R-5', 'D1', 'JPY', 10.50, '2026-10-01', "
        "'2026-10-31', 'open', NULL, :t)",
        t=T0,
    )
    report = _sync(engine)
    assert report.counts["customers"]["inserted"] == 2
    assert report.counts["invoices"]["inserted"] == 3
    held = {(q["record_type"], q["source_id"]): q["reason"] for q in quarantined(engine, "erp")}
    assert set(held) == {("customers", "D3"), ("invoices", "R-4"), ("invoices", "R-5")}
    assert "country: 'XX' is not an ISO 3166" in held[("customers", "D3")]
    assert "timezone: 'Mars/Base'" in held[("customers", "D3")]
    assert "unknown customer 'D3'" in held[("invoices", "R-4")]
    assert "more than 0 decimal places allowed for JPY" in held[("invoices", "R-5")]
    # Fixed in the ERP: the next sync takes the records and releases the quarantine.
    later = T0 + dt.timedelta(hours=1)
    erp_exec(
        erp,
        "UPDATE debtors SET land = 'FR', tz = 'Europe/Paris', mail = 'x@bad.example',"
        " changed = :t WHERE cust_no = 'D3'",
        t=later,
    )
    erp_exec(
        erp, "UPDATE ar_docs SET total = 10, changed = :t WHERE doc_no IN ('R-4', 'R-5')", t=later
    )
    fixed = _sync(engine)
    assert fixed.counts["customers"]["inserted"] == 1
    assert fixed.counts["invoices"]["inserted"] == 2
    assert quarantined(engine, "erp") == []


def _planned_reminder(engine: Engine, number: str) -> int:
    with session_scope(engine) as s:
        invoice = s.scalar(select(Invoice).where(Invoice.invoice_number == number))
        assert invoice is not None
        row = Reminder(
            invoice_id=invoice.id,
            customer_id=invoice.customer_id,
            stage="overdue_1",
            channel="email",
            status="planned",
        )
        s.add(row)
        s.flush()
        return row.id


def _reminder(engine: Engine, rid: int) -> tuple[str, str | None]:
    with session_scope(engine) as s:
        row = s.get(Reminder, rid)
        assert row is not None
        return row.status, row.reason


def test_voided_and_deleted_invoices_stop_their_reminders(engine: Engine, erp: Engine) -> None:
    _sync(engine)
    r1, r3 = _planned_reminder(engine, "R-1"), _planned_reminder(engine, "R-3")
    erp_exec(
        erp,
        "UPDATE ar_docs SET state = 'void', changed = :t WHERE doc_no = 'R-1'",
        t=T0 + dt.timedelta(hours=1),
    )
    _sync(engine)
    assert _reminder(engine, r1) == ("skipped", "void")
    assert _reminder(engine, r3) == ("planned", None)
    # A row deleted in the ERP is seen by a full sync (an incremental one cannot see it).
    erp_exec(erp, "DELETE FROM ar_docs WHERE doc_no = 'R-3'")
    assert _sync(engine).counts["invoices"]["deleted"] == 0
    report = _sync(engine, full=True)
    assert report.counts["invoices"]["deleted"] == 1
    assert _reminder(engine, r3) == ("skipped", "deleted_in_source")
    with session_scope(engine) as s:
        assert s.scalar(select(Invoice.status).where(Invoice.invoice_number == "R-3")) == "void"
    assert _sync(engine, full=True).counts["invoices"]["deleted"] == 0


def test_an_invoice_id_in_two_sources_is_an_error_naming_both(
    engine: Engine, erp: Engine, tmp_path: Path
) -> None:
    from tests.factories import add_customer, add_invoice

    add_customer(engine, "C-9")
    add_invoice(engine, "R-3", "C-9")  # an import: source "files"
    report = _sync(engine)
    assert report.counts["invoices"]["inserted"] == 2
    held = {q["source_id"]: q["reason"] for q in quarantined(engine, "erp")}
    assert "exists in source 'files' and in source 'erp'" in held["R-3"]
    with session_scope(engine) as s:
        inv = s.scalar(select(Invoice).where(Invoice.invoice_number == "R-3"))
        assert inv is not None and (inv.source, inv.customer_id) == ("files", "C-9")


def test_a_failing_query_names_the_query_and_writes_nothing(
    engine: Engine, erp: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = sql_source_toml().replace("FROM ar_pay", "FROM ar_payments_typo")
    monkeypatch.setenv("DUNNING_SOURCES_PATH", str(write_sources(tmp_path / "bad.toml", body)))
    reload_settings()
    with pytest.raises(SyncFailed, match="the payments query failed"):
        _sync(engine)
    with session_scope(engine) as s:
        assert s.scalar(select(Invoice.id)) is None
    from dunning.sources.state import all_states

    state = all_states(engine)["erp"]
    assert state["last_success_at"] is None
    assert "payments query failed" in state["last_error"]


def test_a_query_without_a_required_column_fails_naming_it(
    engine: Engine, erp: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = sql_source_toml().replace("due AS due_on, ", "")
    monkeypatch.setenv("DUNNING_SOURCES_PATH", str(write_sources(tmp_path / "bad.toml", body)))
    reload_settings()
    with pytest.raises(SyncFailed, match="missing required column.*due_on"):
        _sync(engine)


def test_the_database_url_comes_from_the_variable_url_env_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "DUNNING_SOURCES_PATH", str(write_sources(tmp_path / "s.toml", sql_source_toml()))
    )
    monkeypatch.delenv("ERP_DATABASE_URL", raising=False)
    reload_settings()
    source = load_sources()["erp"]
    with pytest.raises(ConfigError, match="ERP_DATABASE_URL, which is not set"):
        source.secret("url")

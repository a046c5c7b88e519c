"""The week's KPI table and the batch failure-rate threshold."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert

from dunning.config import get_settings, reload_settings
from dunning.db.models import Reminder
from dunning.errors import ConfigError
from dunning.kpis import (
    KPI_COLUMNS,
    failure_rate,
    failure_rate_exceeded,
    kpi_records,
    weekly_kpis,
)
from tests.factories import add_customer, add_invoice

AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


def test_failure_rate_counts_only_answered_messages():
    assert failure_rate(0, 0) == 0.0
    assert failure_rate(3, 1) == 0.25
    assert failure_rate_exceeded(8, 2, 0.2) is False  # exactly at the threshold is fine
    assert failure_rate_exceeded(7, 3, 0.2) is True
    assert failure_rate_exceeded(0, 0, 0.0) is False


def test_the_threshold_comes_from_dunning_alert_failure_rate(monkeypatch: pytest.MonkeyPatch):
    assert get_settings().alerts.failure_rate == 0.2
    monkeypatch.setenv("DUNNING_ALERT_FAILURE_RATE", "0.05")
    reload_settings()
    assert get_settings().alerts.failure_rate == 0.05
    monkeypatch.setenv("DUNNING_ALERT_FAILURE_RATE", "2")
    reload_settings()
    with pytest.raises(ConfigError, match="DUNNING_ALERT_FAILURE_RATE='2'"):
        get_settings().alerts


def _sent(engine, invoice_id: int, stage: str, segment: str, days_ago: float, **facts) -> None:
    sent_at = AS_OF - dt.timedelta(days=days_ago)
    stamps = {k: sent_at + dt.timedelta(days=v) for k, v in facts.items()}
    with engine.begin() as conn:
        conn.execute(
            insert(Reminder).values(
                invoice_id=invoice_id,
                customer_id="C1",
                stage=stage,
                channel="email",
                segment=segment,
                status="bounced" if "bounced_at" in stamps else "sent",
                sent_at=sent_at,
                **stamps,
            )
        )


def test_no_kpi_table_before_tracking_data_exists(engine):
    add_customer(engine)
    inv = add_invoice(engine)
    assert weekly_kpis(engine, AS_OF) is None
    _sent(engine, inv, "due", "reliable", 1)
    assert weekly_kpis(engine, AS_OF) is None


def test_weekly_kpis_by_segment_from_the_ledger(engine):
    add_customer(engine)
    invoices = [add_invoice(engine, f"INV-{i}") for i in range(7)]
    _sent(engine, invoices[0], "due", "reliable", 2, delivered_at=0.01, paid_at=1)
    _sent(engine, invoices[1], "due", "reliable", 2, delivered_at=0.01)
    _sent(engine, invoices[2], "due", "at_risk", 1, bounced_at=0.01)
    _sent(engine, invoices[3], "overdue_1", "at_risk", 1, delivered_at=0.01)
    # Before the week: not in its delivery counts, but their 7 days have elapsed.
    _sent(engine, invoices[4], "due", "at_risk", 10, delivered_at=0.01, paid_at=9)
    _sent(engine, invoices[5], "due", "reliable", 8, delivered_at=0.01, paid_at=3)
    _sent(engine, invoices[6], "due", "reliable", 20, delivered_at=0.01, paid_at=1)  # too old

    table = weekly_kpis(engine, AS_OF)
    assert table is not None
    assert list(table.columns) == KPI_COLUMNS
    rows = {r["segment"]: r for r in table.to_dict(orient="records")}
    assert set(rows) == {"reliable", "at_risk", "all"}
    assert (rows["reliable"]["sent"], rows["reliable"]["delivered"]) == (2, 2)
    # Paid within 7 days only over reminders sent at least 7 days ago (the one paid after a
    # day, sent 2 days ago, is not counted yet).
    assert (rows["reliable"]["paid_7d"], rows["reliable"]["paid_7d_n"]) == (1, 1)
    assert rows["reliable"]["paid_7d_rate"] == 1.0
    assert (rows["at_risk"]["paid_7d"], rows["at_risk"]["paid_7d_n"]) == (0, 1)
    assert rows["at_risk"]["bounce_rate"] == 0.5 and rows["at_risk"]["delivery_rate"] == 0.5
    assert rows["all"]["sent"] == 4 and rows["all"]["paid_7d_n"] == 2

    shown = {r["segment"]: r for r in kpi_records(table)}
    assert shown["reliable"]["delivery_rate"] == "100.0%"
    assert shown["at_risk"]["paid_7d_rate"] == "0.0%"


def test_paid_within_7_days_is_na_before_any_reminder_matured(engine):
    add_customer(engine)
    inv = add_invoice(engine)
    _sent(engine, inv, "due", "reliable", 0.01, delivered_at=0.001, paid_at=0.005)
    table = weekly_kpis(engine, AS_OF)
    assert table is not None
    row = kpi_records(table)[0]
    assert (row["paid_7d"], row["paid_7d_n"], row["paid_7d_rate"]) == (0, 0, "n/a")

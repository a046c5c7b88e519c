"""Freshness: a reminder run never sends on a source's data older than its maximum age.

The SQL source's ERP feeds the reminders flow on a real Prefect test server: a stale source
is synced at the start of the run; when that fails its reminders are deferred with reason
``source_stale`` and the run's summary says so. The sync-sources flow syncs every source.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, select, update

from dunning.config import reload_settings
from dunning.core.skip import SkipReason
from dunning.db import session_scope
from dunning.db.models import Invoice, SourceState, utcnow
from dunning.sources.config import load_sources
from dunning.sources.freshness import defer_stale, stale_sources
from tests.factories import add_customer, add_invoice
from tests.sources_support import erp_database, erp_exec, sql_source_toml, write_sources

# Tuesday 24 Nov 2026, 15:00 UTC: inside the send window in Berlin and New York.
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
T0 = dt.datetime(2026, 11, 1, 10, 0)


@pytest.fixture
def erp(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """An ERP with one debtor and two overdue documents, configured as source `erp`."""
    with erp_database(db_url, tmp_path) as (url, erp_engine):
        monkeypatch.setenv("ERP_DATABASE_URL", url)
        monkeypatch.setenv(
            "DUNNING_SOURCES_PATH",
            str(write_sources(tmp_path / "sources.toml", sql_source_toml(attempts=False))),
        )
        reload_settings()
        erp_exec(
            erp_engine,
            "INSERT INTO debtors VALUES ('D1', 'Acme GmbH', "
            "'ap@acme.example', 'DE', 'Europe/Berlin', 'de_DE', :t)",
            t=T0,
        )
        erp_exec(
            erp_engine,
            "INSERT INTO ar_docs VALUES "
            "('R-1', 'D1', 'EUR', 100.00, '2026-10-01', '2026-11-10', 'open', NULL, :t), "
            "('R-2', 'D1', 'EUR', 80.00, '2026-10-01', '2026-11-12', 'open', NULL, :t)",
            t=T0,
        )
        yield erp_engine


def _age(engine: Engine, minutes: int) -> None:
    with session_scope(engine) as s:
        s.execute(
            update(SourceState).values(last_success_at=utcnow() - dt.timedelta(minutes=minutes))
        )


def _sent(report) -> set[str]:  # noqa: ANN001 - a RunReport
    frame = report.to_frame()
    return set(frame.loc[frame["outcome"] == "sent", "invoice_number"])


@pytest.mark.prefect
def test_a_stale_source_that_cannot_sync_defers_its_reminders_with_source_stale(
    prefect_server: None, engine: Engine, erp: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dunning.flows.payment_reminders import payment_reminders
    from dunning.flows.sync_sources import sync_sources

    (report,) = sync_sources()
    assert report["counts"]["invoices"]["inserted"] == 2
    add_customer(engine, "C1")  # an import: the files source is never stale
    add_invoice(engine, "INV-IMPORTED", "C1", due_on=dt.date(2026, 11, 10))
    _age(engine, 45)  # older than max_age_minutes = 30
    monkeypatch.setenv("ERP_DATABASE_URL", "sqlite:////nonexistent/dir/erp.db")
    reload_settings()

    run = payment_reminders(as_of=AS_OF)
    assert _sent(run) == {"INV-IMPORTED"}
    frame = run.to_frame()
    erp_lines = frame[frame["invoice_number"].isin(["R-1", "R-2"])]
    held = erp_lines[erp_lines["outcome"] != "skipped"]  # SMS lines: the ERP has no phones
    assert len(held) == 2 and set(held["outcome"]) == {"deferred"}
    assert set(held["reason"]) == {SkipReason.SOURCE_STALE}
    assert dict(run.skip_reasons())[SkipReason.SOURCE_STALE] == len(held)
    assert SkipReason.SOURCE_STALE in run.to_markdown()


@pytest.mark.prefect
def test_a_stale_source_is_synced_at_the_start_of_the_run(
    prefect_server: None, engine: Engine, erp: Engine
) -> None:
    from dunning.flows.payment_reminders import payment_reminders

    # Never synced: the run syncs the ERP first, then reminds its open invoices.
    run = payment_reminders(as_of=AS_OF)
    assert _sent(run) == {"R-1", "R-2"}
    # Paid in the ERP, and the data is old again: the next run syncs first and sends nothing
    # for the paid invoice (its reminders were sent already; the payment is recorded).
    erp_exec(
        erp,
        "INSERT INTO ar_pay VALUES (1, 'R-1', 100.00, :p, :t)",
        p=dt.datetime(2026, 11, 24, 14, 0),
        t=T0 + dt.timedelta(days=23),
    )
    _age(engine, 45)
    payment_reminders(as_of=AS_OF + dt.timedelta(days=1))
    with session_scope(engine) as s:
        assert s.scalar(select(Invoice.status).where(Invoice.invoice_number == "R-1")) == "paid"


def test_staleness_follows_max_age_and_unconfigured_sources(engine: Engine, erp: Engine) -> None:
    from dunning.sources.registry import get_source
    from dunning.sources.sync import sync_source

    configs = load_sources()
    assert str(stale_sources(engine, configs, utcnow())["erp"]).endswith(
        "never synced (run `dunning sync erp`)"
    )
    sync_source(engine, get_source("erp"))
    assert stale_sources(engine, configs, utcnow()) == {}
    assert "erp" in stale_sources(engine, configs, utcnow() + dt.timedelta(minutes=31))
    # Removed from sources.toml while its invoices are open: stale, never sent on.
    assert "not in sources.toml" in str(stale_sources(engine, {}, utcnow())["erp"])


def test_defer_stale_holds_back_only_sends_of_the_given_invoices() -> None:
    lines = pd.DataFrame(
        {
            "invoice_id": [1, 1, 2, 3],
            "action": ["send", "skip", "send", "defer"],
            "reason": ["", "paid", "", "weekend"],
            "not_before": pd.Series([pd.NaT] * 4, dtype="datetime64[ns, UTC]"),
        }
    )
    out = defer_stale(lines, [1, 3], AS_OF)
    assert list(out["action"]) == ["defer", "skip", "send", "defer"]
    assert list(out["reason"]) == [SkipReason.SOURCE_STALE, "paid", "", "weekend"]
    assert out["not_before"].iloc[0] == pd.Timestamp(AS_OF) + pd.Timedelta(minutes=15)
    assert defer_stale(lines, [], AS_OF) is lines

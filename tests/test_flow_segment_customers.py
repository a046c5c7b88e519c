"""The segment-customers flow on a real Prefect test server: it stores the snapshot, its
artifact shows customers and balances per segment and the movement after a payment, reminder
runs read the snapshot, and a sync that changed payment history runs it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from dunning.config import reload_settings
from dunning.db import session_scope
from dunning.db.models import CustomerSegment, Invoice
from dunning.policy import load_policy, segment_frame
from dunning.portfolio import load_portfolio
from dunning.segment_snapshot import read_snapshot, write_snapshot
from tests.factories import add_customer, add_invoice, add_payment
from tests.sources_support import erp_database, erp_exec, sql_source_toml, write_sources

pytestmark = pytest.mark.prefect

# Tuesday 24 Nov 2026, 15:00 UTC = 10:00 in New York: inside the default send window.
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


def _latest_artifacts() -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        TaskRunFilter,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    keys = ["segment-snapshot", "segment-snapshot-movement"]
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)),
            flow_run_filter=FlowRunFilter(),
            task_run_filter=TaskRunFilter(),
            sort=ArtifactSort.CREATED_DESC,
            limit=10,
            offset=0,
        )
    out: dict[str, Any] = {}
    for a in arts:
        out.setdefault(a.key, a.data)
    return out


def _two_customers(engine: Engine) -> int:
    """C1 owes 7,000.00 USD for 54 days (large overdue: at_risk); C2 is new. C1's invoice id."""
    add_customer(engine, "C1")
    add_customer(engine, "C2", email="bo@example.org", name="Bo Berg")
    big = add_invoice(
        engine,
        "INV-BIG",
        "C1",
        amount=Decimal("7000.00"),
        issued_on=dt.date(2026, 9, 1),
        due_on=dt.date(2026, 10, 1),
    )
    add_invoice(engine, "INV-NEW", "C2", due_on=dt.date(2026, 11, 24))
    return big


def test_the_flow_stores_the_snapshot_and_shows_balances_and_the_movement_after_a_payment(
    prefect_server, engine
):
    from dunning.flows.segment_customers import segment_customers

    big = _two_customers(engine)
    first = segment_customers(as_of=AS_OF)
    assert first["customers"] == 2 and first["new"] == 2 and first["moved"] == 0
    assert first["segments"]["at_risk"] == 1
    stored = read_snapshot(engine, policy=load_policy())
    assert stored.at["C1", "segment"] == "at_risk" and stored.at["C2", "segment"] == "new"
    arts = _latest_artifacts()
    md = str(arts["segment-snapshot"])
    assert "| at_risk | 1 | USD | 1 | $7,000.00 |" in md
    assert "| (new) | at_risk | 1 |" in md
    # Counts and balances only: no name, email or customer id.
    for personal in ("Ada", "Lovelace", "Bo Berg", "@", "C1", "C2"):
        assert personal not in md

    # C1 pays: its history changes segment (one settled invoice: new).
    add_payment(engine, big, "7000.00", "pay-big")
    with session_scope(engine) as s:
        s.execute(update(Invoice).where(Invoice.id == big).values(status="paid"))
    second = segment_customers(as_of=AS_OF + dt.timedelta(days=1))
    assert second["moved"] == 1 and second["new"] == 0
    arts = _latest_artifacts()
    md = str(arts["segment-snapshot"])
    assert "| at_risk | new | 1 |" in md
    assert "1 changed segment, 0 new" in md
    assert "2026-11-24 15:00 UTC" in md  # the last snapshot's as-of
    assert '"from": "at_risk"' in str(arts["segment-snapshot-movement"]) or "at_risk" in str(
        arts["segment-snapshot-movement"]
    )
    with engine.connect() as conn:
        prev = conn.execute(
            select(CustomerSegment.previous_segment).where(CustomerSegment.customer_id == "C1")
        ).scalar()
    assert prev == "at_risk"


def test_reminder_runs_read_the_snapshot_and_segment_the_rest_on_the_fly(
    prefect_server, engine, monkeypatch: pytest.MonkeyPatch
):
    from dunning.flows.payment_reminders import payment_reminders

    _two_customers(engine)
    policy = load_policy()
    frame = segment_frame(load_portfolio(engine), AS_OF, policy)
    # The snapshot says C1 is reliable (as if computed before its invoice went overdue); C2
    # has no row and is segmented now.
    stored = frame.loc[["C1"]].copy()
    stored.loc["C1", "segment"] = "reliable"
    write_snapshot(engine, stored, AS_OF - dt.timedelta(hours=3), policy)

    lines = payment_reminders(as_of=AS_OF, dry_run=True).to_frame()
    seg = lines.drop_duplicates("customer_id").set_index("customer_id")["segment"].astype(str)
    assert seg["C1"] == "reliable" and seg["C2"] == "new"

    # DUNNING_SEGMENT_SNAPSHOT_MAX_AGE_HOURS=0: the snapshot is not used.
    monkeypatch.setenv("DUNNING_SEGMENT_SNAPSHOT_MAX_AGE_HOURS", "0")
    reload_settings()
    lines = payment_reminders(as_of=AS_OF, dry_run=True).to_frame()
    seg = lines.drop_duplicates("customer_id").set_index("customer_id")["segment"].astype(str)
    assert seg["C1"] == "at_risk"


def test_a_sync_that_changed_payment_history_segments_the_customers(
    prefect_server, engine, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from dunning.flows.sync_sources import changed_payment_history, sync_sources

    with erp_database(db_url, tmp_path) as (url, erp):
        monkeypatch.setenv("ERP_DATABASE_URL", url)
        monkeypatch.setenv(
            "DUNNING_SOURCES_PATH",
            str(write_sources(tmp_path / "sources.toml", sql_source_toml(attempts=False))),
        )
        reload_settings()
        t0 = dt.datetime(2026, 11, 1, 10, 0)
        erp_exec(
            erp,
            "INSERT INTO debtors VALUES ('D1', 'Acme GmbH', "
            "'ap@acme.example', 'DE', 'Europe/Berlin', 'de_DE', :t)",
            t=t0,
        )
        erp_exec(
            erp,
            "INSERT INTO ar_docs VALUES "
            "('R-1', 'D1', 'EUR', 100.00, '2026-10-01', '2026-11-10', 'open', NULL, :t)",
            t=t0,
        )
        (report,) = sync_sources()
        assert changed_payment_history(report)
        with engine.connect() as conn:
            computed = conn.execute(select(CustomerSegment.computed_at)).scalars().all()
        assert len(computed) == 1

        # Nothing changed: no segmentation.
        (report,) = sync_sources()
        assert not changed_payment_history(report)
        with engine.connect() as conn:
            again = conn.execute(select(CustomerSegment.computed_at)).scalars().all()
        assert again == computed

        # A payment arrives: segmented again.
        erp_exec(
            erp,
            "INSERT INTO ar_pay VALUES (1, 'R-1', 40.00, :p, :t)",
            p=t0,
            t=t0 + dt.timedelta(hours=1),
        )
        (report,) = sync_sources()
        assert report["counts"]["payments"]["inserted"] == 1
        with engine.connect() as conn:
            later = conn.execute(select(CustomerSegment.computed_at)).scalars().all()
        assert later[0] > computed[0]
        # segment=False: the sync alone.
        erp_exec(
            erp,
            "INSERT INTO ar_pay VALUES (2, 'R-1', 10.00, :p, :t)",
            p=t0,
            t=t0 + dt.timedelta(hours=2),
        )
        (report,) = sync_sources(segment=False)
        assert changed_payment_history(report)
        with engine.connect() as conn:
            last = conn.execute(select(CustomerSegment.computed_at)).scalars().all()
        assert last == later

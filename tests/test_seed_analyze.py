"""`dunning seed` leaves the planner statistics in place (issue #19).

Without them the first chunked and actionable queries after a seed planned full scans and nested
loops (first line of `dunning plan` 45.8 s on PostgreSQL at 1M invoices, 18 s after ANALYZE).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, text

from dunning.db.models import Invoice
from dunning.devtools.seed import seed_portfolio


def test_seeding_leaves_the_planner_statistics_of_the_invoices(engine: Engine) -> None:
    table = Invoice.__tablename__
    counts = seed_portfolio(engine, 40, 300, 3, dt.date(2026, 11, 24))
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # ANALYZE sets reltuples (-1 on a table never analyzed, PostgreSQL 14+); a table
            # this small is read whole, so the count is exact.
            reltuples = conn.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                {"t": table},
            ).scalar_one()
            assert reltuples == counts["invoices"]
        else:
            rows = conn.execute(
                text("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = :t"), {"t": table}
            ).all()
            assert rows, "sqlite_stat1 has no row for the invoices"
            assert all(int(stat.split()[0]) == counts["invoices"] for _, stat in rows)


def test_writing_the_segmentation_snapshot_refreshes_its_statistics(engine: Engine) -> None:
    """The hourly run reads the snapshot right after the daily flow rewrote it: without
    statistics PostgreSQL planned that read for one row and ran it for minutes at 200k
    customers."""
    from dunning.policy import load_policy, segment_frame
    from dunning.portfolio import load_portfolio
    from dunning.segment_snapshot import write_snapshot

    as_of = dt.datetime(2026, 11, 24, 15, tzinfo=dt.UTC)
    seed_portfolio(engine, 40, 300, 3, as_of.date())
    policy = load_policy(None)
    frame = segment_frame(load_portfolio(engine), as_of, policy)
    with engine.begin() as conn:  # forget what seeding left
        if engine.dialect.name == "sqlite":
            conn.execute(text("DELETE FROM sqlite_stat1 WHERE tbl = 'customer_segments'"))
    write_snapshot(engine, frame, as_of, policy)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            reltuples = conn.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = 'customer_segments'::regclass")
            ).scalar_one()
            assert reltuples == len(frame)
        else:
            rows = conn.execute(
                text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'customer_segments'")
            ).all()
            assert rows and all(int(stat.split()[0]) == len(frame) for (stat,) in rows)


def test_a_bulk_import_refreshes_the_statistics_of_its_table(
    engine: Engine, tmp_path, monkeypatch
) -> None:
    """`dunning import` of many rows leaves the planner statistics of the table it wrote (a
    small import leaves them to autovacuum)."""
    from dunning.importers import writer

    path = tmp_path / "customers.csv"
    rows = ["customer_id,name,email,country,timezone,locale"]
    rows += [f"C-{i:04d},Customer {i},c{i}@example.com,DE,Europe/Berlin,de_DE" for i in range(30)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")

    def stats() -> int:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                return int(
                    conn.execute(
                        text("SELECT reltuples FROM pg_class WHERE oid = 'customers'::regclass")
                    ).scalar_one()
                )
            if not conn.execute(
                text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")
            ).scalar():
                return -1  # never analyzed at all
            stat = conn.execute(
                text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'customers' LIMIT 1")
            ).scalar()
            return -1 if stat is None else int(stat.split()[0])

    monkeypatch.setattr(writer, "ANALYZE_AFTER_ROWS", 31)
    assert writer.import_file(engine, "customers", path).inserted == 30
    assert stats() != 30  # below the threshold: nothing analyzed
    monkeypatch.setattr(writer, "ANALYZE_AFTER_ROWS", 30)
    more = tmp_path / "more.csv"
    more.write_text(
        "\n".join(
            [rows[0]]
            + [f"D-{i:04d},Customer {i},d{i}@example.com,DE,Europe/Berlin,de_DE" for i in range(30)]
        )
        + "\n",
        encoding="utf-8",
    )
    assert writer.import_file(engine, "customers", more).inserted == 30
    assert stats() == 60

"""`dunning sources`, `dunning sources test NAME`, `dunning sync NAME [--full] [--json]` with the
files source (the CSV import files) and the SQL source, through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner, Result

from dunning.cli import _load_commands, app
from dunning.config import reload_settings
from dunning.db import session_scope
from dunning.db.models import Customer, Invoice, Payment

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
runner = CliRunner()


def _cli(*args: str) -> Result:
    _load_commands()
    return runner.invoke(app, list(args))


def _json(*args: str) -> Any:
    result = _cli(*args, "--json")
    return json.loads(result.stdout), result.exit_code


@pytest.fixture
def files_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A files source named `books` over copies of the example CSVs, next to sources.toml."""
    folder = tmp_path / "books"
    folder.mkdir()
    for name in ("customers", "invoices", "payments", "payment_attempts"):
        shutil.copy(EXAMPLES / f"{name}.csv", folder / f"{name}.csv")
    (tmp_path / "sources.toml").write_text(
        '[sources.books]\nkind = "files"\nmax_age_minutes = 60\n'
        'customers = "books/customers.csv"\ninvoices = "books/invoices.csv"\n'
        'payments = "books/payments.csv"\npayment_attempts = "books/payment_attempts.csv"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("DUNNING_SOURCES_PATH", str(tmp_path / "sources.toml"))
    reload_settings()
    return folder


def test_sync_json_reports_counts_and_a_second_sync_changes_nothing(
    engine: Engine, files_source: Path
) -> None:
    first, code = _json("sync", "books")
    assert code == 0 and first["ok"] and first["source"] == "books" and first["kind"] == "files"
    assert {k: v["inserted"] for k, v in first["counts"].items()} == {
        "customers": 5,
        "invoices": 5,
        "payments": 3,
        "payment_attempts": 3,
    }
    second, code = _json("sync", "books", "--full")
    assert code == 0
    assert sum(v["inserted"] + v["updated"] for v in second["counts"].values()) == 0
    with session_scope(engine) as s:
        assert {c.source for c in s.scalars(select(Customer))} == {"books"}
        # The same key as `dunning import payments`: the two never count a payment twice.
        keys = set(s.scalars(select(Payment.external_id)))
    assert "csv:INV-2026-0004:2026-11-18T00:15:00+00:00:20000" in keys
    imported = _cli("import", "payments", str(files_source / "payments.csv"), "--json")
    assert json.loads(imported.stdout)["inserted"] == 0
    with session_scope(engine) as s:
        assert len(s.scalars(select(Payment.id)).all()) == 3


def test_a_row_removed_from_the_file_voids_its_invoice(engine: Engine, files_source: Path) -> None:
    assert _json("sync", "books")[1] == 0
    lines = (files_source / "invoices.csv").read_text().splitlines()
    (files_source / "invoices.csv").write_text(
        "\n".join(line for line in lines if not line.startswith("INV-2026-0001")) + "\n"
    )
    report, _ = _json("sync", "books")
    assert report["counts"]["invoices"]["deleted"] == 1
    with session_scope(engine) as s:
        status = s.scalar(select(Invoice.status).where(Invoice.invoice_number == "INV-2026-0001"))
    assert status == "void"


def test_sources_lists_last_sync_cursor_counts_and_errors(
    engine: Engine, files_source: Path
) -> None:
    listing, code = _json("sources")
    assert code == 0
    (row,) = listing["sources"]
    assert (row["name"], row["kind"], row["last_sync"], row["stale"]) == (
        "books",
        "files",
        None,
        True,
    )
    _json("sync", "books")
    (row,) = _json("sources")[0]["sources"]
    assert row["last_sync"] is not None and not row["stale"] and row["error"] is None
    assert row["counts"]["invoices"]["inserted"] == 5
    (files_source / "invoices.csv").unlink()
    failed, code = _json("sync", "books")
    assert code == 1 and not failed["ok"] and "invoices.csv: no such file" in failed["message"]
    (row,) = _json("sources")[0]["sources"]
    assert "no such file" in row["error"] and row["last_sync"] is not None
    human = _cli("sources")
    assert human.exit_code == 0 and "books" in human.stdout


def test_sources_test_reads_without_writing(engine: Engine, files_source: Path) -> None:
    result = _cli("sources", "test", "books")
    assert result.exit_code == 0, result.stderr
    assert "invoices: 5 row(s)" in result.stderr
    with session_scope(engine) as s:
        assert s.scalar(select(Invoice.id)) is None
    unknown = _cli("sources", "test", "nope")
    assert unknown.exit_code == 1
    assert "no source named 'nope' in sources.toml; configured: books" in unknown.stderr


def test_invalid_rows_are_quarantined_and_shown(engine: Engine, files_source: Path) -> None:
    path = files_source / "invoices.csv"
    path.write_text(
        path.read_text().replace(
            "INV-2026-0002,C-1002,EUR,89.90", "INV-2026-0002,C-1002,EUR,89.905"
        )
    )
    result = _cli("sync", "books")
    assert result.exit_code == 0, result.stderr
    assert "quarantined invoices INV-2026-0002: amount: '89.905' has more than 2" in result.stderr
    (row,) = _json("sources")[0]["sources"]
    assert row["quarantined"] == 1

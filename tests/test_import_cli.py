"""`dunning import ...` end to end: real files, a real database, the real CLI."""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import Engine, select, text
from typer.testing import CliRunner, Result

from dunning.cli import _load_commands, app
from dunning.db.models import Customer, Invoice, Payment, PaymentAttempt

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
runner = CliRunner()


def _cli(*args: str) -> Result:
    _load_commands()
    return runner.invoke(app, ["import", *args])


def _json(*args: str) -> dict[str, Any]:
    result = _cli(*args, "--json")
    payload: dict[str, Any] = json.loads(result.stdout)
    assert (result.exit_code == 0) == payload["ok"], result.stderr
    return payload


def _write(path: Path, content: str) -> Path:
    path.write_text(content, encoding="utf-8")
    return path


def _counts(payload: dict[str, Any]) -> tuple[int, int, int, int]:
    return (payload["inserted"], payload["updated"], payload["unchanged"], payload["rejected"])


def _rows(engine: Engine, model: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(model)))


def _import_examples() -> None:
    for kind, name in (
        ("customers", "customers"),
        ("invoices", "invoices"),
        ("payments", "payments"),
        ("payment-attempts", "payment_attempts"),
    ):
        assert _json(kind, str(EXAMPLES / f"{name}.csv"))["ok"]


def test_examples_import_and_reimport_changes_nothing(engine: Engine) -> None:
    _import_examples()
    before = {m: _rows(engine, m) for m in (Customer, Invoice, Payment, PaymentAttempt)}
    assert [len(v) for v in before.values()] == [5, 5, 3, 3]
    for kind, name, n in (
        ("customers", "customers", 5),
        ("invoices", "invoices", 5),
        ("payments", "payments", 3),
        ("payment-attempts", "payment_attempts", 3),
    ):
        assert _counts(_json(kind, str(EXAMPLES / f"{name}.csv"))) == (0, 0, n, 0)
    assert {m: _rows(engine, m) for m in before} == before
    jp = next(c for c in before[Customer] if c.customer_id == "C-1004")
    assert jp.phone == "+819012345678"
    pay = next(p for p in before[Payment] if p.amount == Decimal("20000"))
    assert pay.paid_at == dt.datetime(2026, 11, 18, 0, 15, tzinfo=dt.UTC)
    assert pay.external_id == "csv:INV-2026-0004:2026-11-18T00:15:00+00:00:20000"


def test_a_changed_row_updates_its_record(engine: Engine, tmp_path: Path) -> None:
    _import_examples()
    original = (EXAMPLES / "invoices.csv").read_text()
    changed = original.replace("INV-2026-0002,C-1002,EUR,89.90", "INV-2026-0002,C-1002,EUR,99.90")
    changed = changed.replace(
        "INV-2026-0005,C-1005,GBP,310.50,2026-10-05,2026-11-04,disputed",
        "INV-2026-0005,C-1005,GBP,310.50,2026-10-05,2026-11-04,open",
    )
    assert _counts(_json("invoices", str(_write(tmp_path / "inv.csv", changed)))) == (0, 2, 3, 0)
    with engine.connect() as conn:
        got = dict(conn.execute(select(Invoice.invoice_number, Invoice.amount)).tuples().all())
        status = conn.execute(
            select(Invoice.status).where(Invoice.invoice_number == "INV-2026-0005")
        ).scalar_one()
    assert got["INV-2026-0002"] == Decimal("99.90")
    assert status == "open"


def test_payment_exceeding_the_balance_left_by_stored_payments(
    engine: Engine, tmp_path: Path
) -> None:
    _import_examples()  # INV-2026-0001: 1250.00 USD with 500.00 paid
    path = _write(
        tmp_path / "pay.csv",
        "invoice_number,amount,paid_at\n"
        "INV-2026-0001,700.00,2026-11-10\nINV-2026-0001,50.01,2026-11-11\n",
    )
    payload = _json("payments", str(path))
    assert payload["errors"] == [
        "line 3: amount: 50.01 exceeds the balance 50.00 USD of invoice INV-2026-0001 "
        "(amount 1250.00 minus 1200.00 already paid)"
    ]
    assert len(_rows(engine, Payment)) == 3  # nothing imported, not even line 2
    exact = _write(
        tmp_path / "exact.csv",
        "invoice_number,amount,paid_at\nINV-2026-0001,750.00,2026-11-10T09:00:00-05:00\n",
    )
    assert _counts(_json("payments", str(exact))) == (1, 0, 0, 0)
    with engine.connect() as conn:
        status = conn.execute(
            select(Invoice.status).where(Invoice.invoice_number == "INV-2026-0001")
        ).scalar_one()
    # Imported payments take the one payment path: a zero balance settles the invoice.
    assert status == "paid"


def test_an_invalid_row_imports_nothing_and_prints_every_bad_row(
    engine: Engine, tmp_path: Path
) -> None:
    _import_examples()
    path = _write(
        tmp_path / "inv.csv",
        "invoice_number,customer_id,currency,amount,issued_on,due_on\n"
        "INV-9,C-1001,USD,1.00,2026-11-01,2026-11-30\n"
        "INV-10,C-9999,USD,1.00,2026-11-01,2026-11-30\n"
        "INV-11,C-1001,USD,1.00,2026-11-01,30.11.2026\n",
    )
    result = _cli("invoices", str(path))
    assert result.exit_code == 1
    assert (
        "line 3: customer_id: unknown customer 'C-9999'; import it with "
        "`dunning import customers` first"
    ) in result.stderr
    assert "line 4: due_on: '30.11.2026' is not a date (expected YYYY-MM-DD)" in result.stderr
    assert "2 invalid row(s); nothing was imported" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert len(_rows(engine, Invoice)) == 5


def test_skip_invalid_imports_valid_rows_and_writes_neutralised_rejects(
    engine: Engine, tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "cust.csv",
        "customer_id,name,country,timezone,locale\n"
        "C-1,Good,US,America/Chicago,en_US\n"
        'C-2,=HYPERLINK("http://evil"),US,Mars/Base,en_US\n',
    )
    payload = _json("customers", str(path), "--skip-invalid")
    assert _counts(payload) == (1, 0, 0, 1)
    assert payload["rejects_file"] == str(tmp_path / "cust.csv.rejects.csv")
    with open(payload["rejects_file"], newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["line", "customer_id", "name", "country", "timezone", "locale", "errors"],
        [
            "3",
            "C-2",
            '\'=HYPERLINK("http://evil")',
            "US",
            "Mars/Base",
            "en_US",
            "timezone: 'Mars/Base' is not an IANA time zone (e.g. Europe/Berlin)",
        ],
    ]
    assert [c.customer_id for c in _rows(engine, Customer)] == ["C-1"]
    custom = tmp_path / "out" / "rejects.csv"
    assert _json("customers", str(path), "--skip-invalid", "--rejects", str(custom))[
        "rejects_file"
    ] == str(custom)
    assert custom.exists()


def test_xlsx_with_typed_cells(engine: Engine, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(
        [
            "customer_id",
            "name",
            "phone",
            "country",
            "timezone",
            "locale",
            "sms_consent",
            "paused_until",
        ]
    )
    sheet.append(
        [
            1001,
            "Typed",
            4915123456789,
            "DE",
            "Europe/Berlin",
            "de_DE",
            True,
            dt.datetime(2026, 12, 24),
        ]
    )
    book.save(tmp_path / "c.xlsx")
    assert _counts(_json("customers", str(tmp_path / "c.xlsx"))) == (1, 0, 0, 0)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["invoice_number", "customer_id", "currency", "amount", "issued_on", "due_on"])
    sheet.append(["X-1", 1001, "EUR", 12.5, dt.date(2026, 11, 1), dt.datetime(2026, 12, 1)])
    sheet.append(["X-2", 1001, "JPY", 12.5, dt.date(2026, 11, 1), dt.datetime(2026, 12, 1)])
    book.save(tmp_path / "i.xlsx")
    assert _json("invoices", str(tmp_path / "i.xlsx"))["errors"] == [
        "line 3: amount: '12.5' has more than 0 decimal places allowed for JPY"
    ]
    assert _json("invoices", str(tmp_path / "i.xlsx"), "--skip-invalid")["inserted"] == 1
    (customer,) = _rows(engine, Customer)
    assert (customer.customer_id, customer.phone, customer.sms_consent, customer.paused_until) == (
        "1001",
        "+4915123456789",
        True,
        dt.date(2026, 12, 24),
    )
    (invoice,) = _rows(engine, Invoice)
    assert (invoice.amount, invoice.due_on) == (Decimal("12.50"), dt.date(2026, 12, 1))


def test_file_level_problems_exit_non_zero_with_a_message(engine: Engine, tmp_path: Path) -> None:
    empty = _write(tmp_path / "empty.csv", "")
    payload = _json("customers", str(empty))
    assert payload["errors"] == [
        f"{empty}: the file is empty; it needs a header line naming the columns"
    ]
    latin = tmp_path / "latin.csv"
    latin.write_bytes(
        "customer_id,country,timezone,locale,name\nC-1,DE,Europe/Berlin,de_DE,M\xfcller\n".encode(
            "latin-1"
        )
    )
    result = _cli("customers", str(latin))
    assert result.exit_code == 1
    assert "must be UTF-8 encoded" in " ".join(result.stderr.split())
    missing = _cli("customers", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 1 and "no such file" in missing.stderr


def test_a_database_failure_rolls_back_the_whole_file(engine: Engine, tmp_path: Path) -> None:
    header = "customer_id,name,country,timezone,locale\n"
    first = _write(tmp_path / "a.csv", header + "C-1,One,US,America/Chicago,en_US\n")
    assert _json("customers", str(first))["inserted"] == 1
    # A real trigger makes the database refuse the update of C-1, after the insert of C-3 ran.
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_c1 BEFORE UPDATE ON customers "
                    "WHEN NEW.customer_id = 'C-1' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_c1() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.customer_id = 'C-1' THEN RAISE EXCEPTION 'refused by test "
                    "trigger'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_c1 BEFORE UPDATE ON customers FOR EACH ROW "
                    "EXECUTE FUNCTION refuse_c1()"
                )
            )
    try:
        payload = _json(
            "customers",
            str(
                _write(
                    tmp_path / "b.csv",
                    header + "C-1,Renamed,US,America/Chicago,en_US\n"
                    "C-3,Three,US,America/Chicago,en_US\n",
                )
            ),
        )
    finally:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "DROP TRIGGER refuse_c1"
                    if engine.dialect.name == "sqlite"
                    else "DROP TRIGGER refuse_c1 ON customers"
                )
            )
            if engine.dialect.name != "sqlite":
                conn.execute(text("DROP FUNCTION refuse_c1()"))
    assert payload["ok"] is False
    assert "refused by test trigger" in payload["errors"][0]
    assert "nothing was imported" in payload["errors"][0]
    assert [(c.customer_id, c.name) for c in _rows(engine, Customer)] == [("C-1", "One")]


@pytest.mark.parametrize("rows", [1700])
def test_bulk_file_across_chunk_boundaries(engine: Engine, tmp_path: Path, rows: int) -> None:
    cust = "customer_id,country,timezone,locale\n" + "".join(
        f"C-{i},GB,Europe/London,en_GB\n" for i in range(rows)
    )
    assert _json("customers", str(_write(tmp_path / "c.csv", cust)))["inserted"] == rows
    inv = "invoice_number,customer_id,currency,amount,issued_on,due_on\n" + "".join(
        f"I-{i},C-{i},GBP,{i}.00,2026-10-01,2026-10-31\n" for i in range(rows)
    )
    assert _json("invoices", str(_write(tmp_path / "i.csv", inv)))["inserted"] == rows
    inv = inv.replace("I-7,C-7,GBP,7.00", "I-7,C-7,GBP,8.00")
    assert _counts(_json("invoices", str(_write(tmp_path / "i.csv", inv)))) == (0, 1, rows - 1, 0)

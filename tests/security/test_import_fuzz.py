"""Hostile and malformed import files through the real CLI into a real database.

Whatever the file holds, the CLI exits 0 or 1 with ``line N: column: problem`` lines (never a
traceback), stores each valid row once, keeps hostile text literal, and a re-import of the
same file changes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from sqlalchemy import Engine, delete, func, select
from typer.testing import CliRunner, Result

from dunning.cli import _load_commands, app
from dunning.db import session_scope
from dunning.db.models import Customer, Invoice
from tests.factories import add_customer

runner = CliRunner()
_load_commands()
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HEADER = ["customer_id", "name", "email", "phone", "country", "timezone", "locale"]
HUGE = "A" * 100_000
HOSTILE = [
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
    '=HYPERLINK("http://evil.example","click")',
    "{{ 7*7 }}",
    "{% for x in range(10**9) %}{% endfor %}",
    "{{ config.__class__ }}",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "a\x00b",
    "bell\x07",
    "Zoë Ünïcødé 山田",
    "\u202eevil",
    "'; DROP TABLE customers;--",
    "\ufeffBOM inside",
]
LINE_PROBLEM = re.compile(r"^line \d+: [a-z_]+: .+")
ERROR_LINE = re.compile(r"^error:")  # rich wraps long lines; the first starts so


def cli(kind: str, path: Path, *extra: str) -> Result:
    result = runner.invoke(app, ["import", kind, str(path), *extra])
    # Never an unhandled exception: typer's exits are SystemExit with 0 or 1.
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception,
        result.output,
    )
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    return result


def assert_user_errors(result: Result) -> None:
    """A failed import explains itself: every stderr line is a row problem or the error."""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert any(ERROR_LINE.match(ln) for ln in lines), result.stderr
    problems = [ln for ln in lines if ln.startswith("line ")]
    assert all(LINE_PROBLEM.match(ln) for ln in problems), problems
    if "invalid row(s)" in result.stderr:
        assert problems, "rejected rows must be named by line and column"


def customers(engine: Engine) -> dict[str, str | None]:
    with session_scope(engine) as s:
        return {c.customer_id: c.name for c in s.scalars(select(Customer))}


def clear(engine: Engine) -> None:
    with session_scope(engine) as s:
        s.execute(delete(Invoice))
        s.execute(delete(Customer))


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str) -> Path:
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows([header, *rows])
    path.write_bytes(buffer.getvalue().encode(encoding, errors="replace"))
    return path


def valid_row(cid: str, name: str) -> list[str]:
    return [cid, name, "", "", "US", "America/New_York", "en_US"]


_cell = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            " ",
            "US",
            "ZZ",
            "Mars/Base",
            "xx_YY",
            "en_US",
            "not-an-email",
            "+1415555",
            "+14155550100",
        ]
    ),
)
_garbage_row = st.lists(_cell, min_size=0, max_size=9)
_name = st.one_of(
    st.sampled_from([h for h in HOSTILE if "\x00" not in h]),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40),
)


@FUZZ
@given(
    names=st.lists(_name, min_size=1, max_size=6),
    garbage=st.lists(_garbage_row, max_size=4),
    encoding=st.sampled_from(["utf-8", "utf-8-sig"]),
    huge=st.booleans(),
    skip=st.booleans(),
)
def test_hostile_csv_rows_are_stored_literally_once_or_rejected_by_line(
    engine: Engine,
    tmp_path: Path,
    names: list[str],
    garbage: list[list[str]],
    encoding: str,
    huge: bool,
    skip: bool,
) -> None:
    clear(engine)
    prefix = uuid.uuid4().hex[:8]
    good = {f"{prefix}-{i}": name for i, name in enumerate(names)}
    rows = [valid_row(cid, name) for cid, name in good.items()]
    # Garbage ids cannot collide with the good ones; a huge name must be rejected.
    rows += [[f"g{prefix}-{i}", *cells[1:]] if cells else [] for i, cells in enumerate(garbage)]
    if huge:
        rows.append([f"h{prefix}", HUGE, "", "", "US", "America/New_York", "en_US"])
    path = write_csv(tmp_path / f"{prefix}.csv", HEADER, rows, encoding)
    extra = ["--skip-invalid"] if skip else []
    first = cli("customers", path, *extra)
    stored = customers(engine)
    if first.exit_code == 1:
        assert_user_errors(first)
        assert stored == {}  # nothing imported when any row is invalid
        assert not skip or "line" in first.stderr
        return
    # Every well-formed row is stored exactly once, its name as typed (stripped).
    for cid, name in good.items():
        assert stored[cid] == (name.strip() or None) or (stored[cid] == name.strip())
    assert f"h{prefix}" not in stored
    again = json.loads(cli("customers", path, *extra, "--json").stdout)
    assert (again["inserted"], again["updated"]) == (0, 0)
    assert customers(engine) == stored


@FUZZ
@given(
    data=st.binary(max_size=2000),
    kind=st.sampled_from(["customers", "invoices", "payments", "payment-attempts"]),
    suffix=st.sampled_from([".csv", ".xlsx", ".txt"]),
)
def test_random_bytes_never_crash_the_importer(
    engine: Engine, tmp_path: Path, data: bytes, kind: str, suffix: str
) -> None:
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    result = cli(kind, path)
    if result.exit_code == 1:
        assert_user_errors(result)


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "utf-16-le", "cp1252"])
def test_non_utf8_files_are_refused_with_the_fix(
    engine: Engine, tmp_path: Path, encoding: str
) -> None:
    path = write_csv(tmp_path / "c.csv", HEADER, [valid_row("C1", "Jürgen Müller")], encoding)
    result = cli("customers", path)
    assert result.exit_code == 1
    assert "UTF-8" in result.stderr and str(path) in result.stderr.replace("\n", "")
    assert customers(engine) == {}


def test_utf8_bom_file_imports_and_reimports_unchanged(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", HEADER, [valid_row("C1", "Jürgen Müller")], "utf-8-sig")
    assert json.loads(cli("customers", path, "--json").stdout)["inserted"] == 1
    assert json.loads(cli("customers", path, "--json").stdout)["unchanged"] == 1
    assert customers(engine) == {"C1": "Jürgen Müller"}


def test_a_100kb_field_is_a_line_problem_not_a_crash(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "c.csv", HEADER, [valid_row("C1", "ok"), valid_row("C2", HUGE)], "utf-8"
    )
    result = cli("customers", path)
    assert result.exit_code == 1
    assert "line 3: name: is 100000 characters long" in result.stderr
    skipped = json.loads(cli("customers", path, "--skip-invalid", "--json").stdout)
    assert (skipped["inserted"], skipped["rejected"]) == (1, 1)
    assert customers(engine) == {"C1": "ok"}


def test_rejects_file_neutralises_formulas(engine: Engine, tmp_path: Path) -> None:
    rows = [
        ["=cmd|' /C calc'!A0", "@SUM(1)", "x", "", "ZZ", "Nowhere/X", "xx"],
        valid_row("C1", "+1 formula name"),
    ]
    path = write_csv(tmp_path / "c.csv", HEADER, rows, "utf-8")
    report = json.loads(cli("customers", path, "--skip-invalid", "--json").stdout)
    assert report["inserted"] == 1 and report["rejected"] == 1
    with open(report["rejects_file"], newline="", encoding="utf-8") as handle:
        cells = [c for row in csv.reader(handle) for c in row]
    assert "'=cmd|' /C calc'!A0" in cells and "'@SUM(1)" in cells
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)
    # the database keeps the text as typed; only exports are neutralised
    assert customers(engine) == {"C1": "+1 formula name"}


def _xlsx(path: Path, rows: list[list[Any]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in [HEADER, *rows]:
        sheet.append(row)
    book.save(path)
    return path


@FUZZ
@given(
    names=st.lists(
        st.one_of(
            st.sampled_from([h for h in HOSTILE if not any(ord(c) < 32 for c in h)]),
            st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30),
            st.integers(),
            st.floats(allow_nan=True),
            st.booleans(),
            st.none(),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_hostile_xlsx_cells_never_crash_and_reimport_changes_nothing(
    engine: Engine, tmp_path: Path, names: list[Any]
) -> None:
    clear(engine)
    prefix = uuid.uuid4().hex[:8]
    rows = [
        [f"{prefix}-{i}", name, None, None, "US", "America/New_York", "en_US"]
        for i, name in enumerate(names)
    ]
    path = _xlsx(tmp_path / f"{prefix}.xlsx", rows)
    first = cli("customers", path, "--skip-invalid", "--json")
    report = json.loads(first.stdout)
    assert report["inserted"] + report["rejected"] == len(rows)
    assert len(customers(engine)) == report["inserted"]
    again = json.loads(cli("customers", path, "--skip-invalid", "--json").stdout)
    assert (again["inserted"], again["updated"]) == (0, 0)
    assert again["unchanged"] == report["inserted"]


def test_jinja_and_html_names_are_stored_as_typed(engine: Engine, tmp_path: Path) -> None:
    typed = ["{{ 7*7 }}{% for x in range(10**9) %}", "<script>alert(1)</script>"]
    path = write_csv(
        tmp_path / "c.csv", HEADER, [valid_row(f"C{i}", n) for i, n in enumerate(typed)], "utf-8"
    )
    assert cli("customers", path).exit_code == 0
    assert customers(engine) == {"C0": typed[0], "C1": typed[1]}


def test_invoices_with_hostile_cells_report_lines_and_store_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    add_customer(engine, "C1")
    header = [
        "invoice_number",
        "customer_id",
        "currency",
        "amount",
        "issued_on",
        "due_on",
        "payment_link",
    ]
    rows = [
        ["=1+1", "C1", "USD", "1e3", "2026-01-01", "2026-02-01", "javascript:alert(1)"],
        ["INV-2", "C1", "USD", "-5", "2026-13-01", "2026-02-01", ""],
        ["INV-3", "{{7*7}}", "XXX", "NaN", "", "2026-02-01", ""],
    ]
    path = write_csv(tmp_path / "i.csv", header, rows, "utf-8")
    result = cli("invoices", path)
    assert result.exit_code == 1
    assert_user_errors(result)
    for line in ("line 2:", "line 3:", "line 4:"):
        assert line in result.stderr
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(Invoice.id))) == 0


@pytest.mark.parametrize("amount", ["1e308", "1e30", "123456789012345678901234567890.12"])
def test_amounts_beyond_decimal_precision_are_a_line_problem(
    engine: Engine, tmp_path: Path, amount: str
) -> None:
    # Found by this suite: Decimal.quantize raised InvalidOperation out of the CLI.
    add_customer(engine, "C1")
    header = ["invoice_number", "customer_id", "currency", "amount", "issued_on", "due_on"]
    path = write_csv(
        tmp_path / "i.csv",
        header,
        [["INV-1", "C1", "USD", amount, "2026-01-01", "2026-02-01"]],
        "utf-8",
    )
    result = cli("invoices", path)
    assert result.exit_code == 1
    assert "line 2: amount:" in result.stderr


_amounts = st.one_of(
    st.text(max_size=12),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(repr),
    st.integers().map(str),
    st.sampled_from(["1,000.00", "1.000,00", "$5", "5 USD", "0x10", "--1", "+5"]),
)
_dates = st.one_of(
    st.text(max_size=12),
    st.dates().map(str),
    st.sampled_from(["2026-02-30", "31/12/2026", "0000-00-00", "2026-1-1"]),
)


@FUZZ
@given(
    amount=_amounts,
    issued=_dates,
    due=_dates,
    currency=st.sampled_from(["USD", "JPY", "BHD", "usd", "XXX", "", "EURO"]),
)
def test_hostile_invoice_cells_never_crash_and_store_once(
    engine: Engine, tmp_path: Path, amount: str, issued: str, due: str, currency: str
) -> None:
    clear(engine)
    add_customer(engine, "C1")
    header = ["invoice_number", "customer_id", "currency", "amount", "issued_on", "due_on"]
    path = write_csv(
        tmp_path / "i.csv", header, [["INV-1", "C1", currency, amount, issued, due]], "utf-8"
    )
    result = cli("invoices", path)
    if result.exit_code == 1:
        assert_user_errors(result)
        return
    again = json.loads(cli("invoices", path, "--json").stdout)
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 1)
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(Invoice.id))) == 1

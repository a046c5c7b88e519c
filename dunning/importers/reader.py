"""Reading import files (CSV or .xlsx) into a header and rows keyed by physical line number."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dunning.errors import ImportFailed

#: A cell as read: ``str`` from CSV; ``str``, ``int``, ``float``, ``bool``, ``date`` or
#: ``datetime`` from Excel; ``None`` for an empty Excel cell.
Cell = Any


@dataclass(frozen=True)
class Row:
    """One data row: its physical line (header is line 1) and its cells by column name."""

    line: int
    cells: dict[str, Cell]
    #: Number of non-empty cells beyond the header's columns (an unquoted comma, usually).
    overflow: int = 0


@dataclass
class Table:
    """A file's normalised header (lower-case, stripped) and its non-blank data rows."""

    name: str
    header: list[str]
    rows: list[Row] = field(default_factory=list)


def read_table(path: Path) -> Table:
    """The header and rows of the CSV or .xlsx file at ``path``.

    Raises ImportFailed for a missing, empty, non-UTF-8 or unreadable file, or a header with
    blank or repeated column names.
    """
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file; check the path")
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise ImportFailed(f"{path}: Excel .xls files are not supported; save it as .xlsx or CSV")
    if suffix in (".xlsx", ".xlsm"):
        header, rows = _xlsx_rows(path)
    else:
        header, rows = _csv_rows(path)
    return _table(path, header, rows)


def _csv_rows(path: Path) -> tuple[list[Cell] | None, list[tuple[int, list[Cell]]]]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportFailed(
            f"{path}: line {line} is not valid UTF-8 (byte 0x{data[exc.start]:02x}); the file must "
            "be UTF-8 encoded: re-save it as UTF-8 (in Excel: 'CSV UTF-8 (Comma delimited)')"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[Cell] | None = None
    rows: list[tuple[int, list[Cell]]] = []
    start = 1
    try:
        for record in reader:
            # A quoted cell may span lines: the row starts on the line after the previous record.
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = list(record)
            else:
                rows.append((line, list(record)))
    except csv.Error as exc:
        raise ImportFailed(
            f"{path}: line {reader.line_num}: not valid CSV ({exc}); check the quoting on that line"
        ) from None
    return header, rows


def _xlsx_rows(path: Path) -> tuple[list[Cell] | None, list[tuple[int, list[Cell]]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFailed(
            f"{path}: not a readable .xlsx workbook ({type(exc).__name__}); "
            "open it in Excel and save it again as .xlsx"
        ) from None
    try:
        sheet = workbook.worksheets[0]
        header: list[Cell] | None = None
        rows: list[tuple[int, list[Cell]]] = []
        for line, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = list(values)
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in cells):
                continue
            if header is None:
                header = ["" if v is None else str(v) for v in cells]
            else:
                rows.append((line, cells))
    finally:
        workbook.close()
    return header, rows


def _table(path: Path, header: list[Cell] | None, rows: list[tuple[int, list[Cell]]]) -> Table:
    if header is None:
        raise ImportFailed(f"{path}: the file is empty; it needs a header line naming the columns")
    names = [str(h).strip().lower() for h in header]
    # Excel sheets often carry trailing empty header cells; they name nothing.
    while names and not names[-1]:
        names.pop()
    if "" in names:
        raise ImportFailed(
            f"{path}: line 1: column {names.index('') + 1} has no name; give every column a header"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ImportFailed(f"{path}: line 1: column(s) {', '.join(repeated)} appear more than once")
    table = Table(name=str(path), header=names)
    width = len(names)
    for line, cells in rows:
        overflow = sum(1 for c in cells[width:] if c is not None and str(c).strip())
        padded = cells[:width] + [None] * (width - len(cells))
        table.rows.append(Row(line, dict(zip(names, padded, strict=True)), overflow))
    return table

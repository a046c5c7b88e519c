"""CSV export that spreadsheets cannot turn into formulas (CSV/formula injection, CWE-1236).

A cell a spreadsheet would evaluate (starting with = + - @, or a tab/carriage return that
Excel strips before looking) gets a leading apostrophe, which makes it literal text. Every
module that writes CSV for people to open should write it through ``write_csv``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: First characters that make Excel, LibreOffice or Google Sheets evaluate a cell.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """``value`` as CSV text, with a leading ' when a spreadsheet would run it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def write_csv(path: Path, header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> Path:
    """``path``, after writing ``header`` and ``rows`` there as UTF-8 CSV, every cell made safe."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([safe_cell(h) for h in header])
        writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return path

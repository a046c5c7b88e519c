"""The formula-injection-safe CSV writer: what a spreadsheet would run becomes text."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from dunning.csvsafe import FORMULA_START, safe_cell, write_csv


def test_formula_cells_get_an_apostrophe_and_others_stay() -> None:
    assert [safe_cell(v) for v in ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"]] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\t=1",
        "'\r=1",
    ]
    assert [safe_cell(v) for v in ["Ada", "", None, 12, "a=b", " =1"]] == [
        "Ada",
        "",
        "",
        "12",
        "a=b",
        " =1",
    ]


@given(
    rows=st.lists(
        st.lists(st.one_of(st.text(max_size=20), st.integers(), st.none()), min_size=1, max_size=4),
        max_size=5,
    )
)
def test_written_files_read_back_with_no_live_formula(rows: list[list[object]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_csv(Path(tmp) / "out.csv", ["=header", "b"], rows)
        with path.open(newline="", encoding="utf-8") as handle:
            back = list(csv.reader(handle))
    assert back[0] == ["'=header", "b"]
    assert len(back) == len(rows) + 1
    for original, read in zip(rows, back[1:], strict=True):
        assert read == [safe_cell(v) for v in original]
        assert not any(c.startswith(FORMULA_START) for c in read)

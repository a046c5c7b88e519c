"""The files source: the CSV/Excel import files, read on every sync like `dunning import`.

Settings name one file per record type (``invoices`` required; ``customers``, ``payments``,
``payment_attempts`` optional), relative to sources.toml. Files have no change dates, so every
sync reads them in full and an invoice no longer in the file counts as deleted (voided).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dunning.errors import ImportFailed
from dunning.importers import fields
from dunning.importers.reader import read_table
from dunning.sources.base import ID_COLUMNS, RECORD_TYPES, Pull, PullProgress, Record, SourceError
from dunning.sources.config import SourceConfig


class FilesSource:
    """Reads the configured CSV/.xlsx files with the import's reader."""

    kind = "files"

    def __init__(self, config: SourceConfig) -> None:
        self.name = config.name
        self.paths = {
            t: _resolve(config.base_dir, str(config.get(t))) for t in RECORD_TYPES if config.get(t)
        }

    def check(self) -> str:
        """A line naming each file and its row count; SourceError when one is unreadable."""
        parts = []
        for record_type, path in self.paths.items():
            parts.append(f"{record_type}: {len(self._read(path).rows)} row(s) in {path}")
        return "; ".join(parts)

    def pull(self, cursor: str | None, progress: PullProgress | None = None) -> Pull:
        """Every row of every file (the cursor is not used: files carry no change dates)."""
        pull = Pull(complete=True)
        for record_type, path in self.paths.items():
            table = self._read(path)
            pull.requests += 1
            for row in table.rows:
                ident = ":".join(_id_part(row.cells.get(c)) for c in ID_COLUMNS[record_type])
                # Rows keep their file line in the id, so a quarantined row can be found.
                pull.add(record_type, Record(ident or f"line {row.line}", dict(row.cells)))
            if progress:
                progress(record_type, len(table.rows))
        return pull

    def _read(self, path: Path) -> Any:
        try:
            return read_table(path)
        except ImportFailed as exc:
            raise SourceError(f"source {self.name}: {exc}") from None


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _id_part(cell: Any) -> str:
    return "" if fields.is_blank(cell) else str(cell).strip()

"""Sources: where invoices live (Stripe, Xero, an SQL database, CSV/Excel files), synced into
the database through the import's validation. See docs/sources.md."""

from dunning.sources.base import RECORD_TYPES, Pull, Record, Source, SourceError
from dunning.sources.config import SourceConfig, load_sources, sources_path

__all__ = [
    "RECORD_TYPES",
    "Pull",
    "Record",
    "Source",
    "SourceConfig",
    "SourceError",
    "load_sources",
    "sources_path",
]

"""The source model: what a source gives the sync (records, a cursor) and the errors it raises.

A source speaks the CSV import's language: every record is a dict keyed by the import's column
names (``customer_id``, ``invoice_number``, ``amount``, ``paid_at`` ...), so one validation path
(``dunning.importers.validate``) checks what a CSV file, an ERP query, Stripe or Xero send.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dunning.errors import DunningError

#: Record types in the order a sync applies them (an invoice needs its customer first).
RECORD_TYPES = ("customers", "invoices", "payments", "payment_attempts")
#: The import kind (``dunning.importers.validate.KINDS``) that validates each record type.
IMPORT_KINDS = {
    "customers": "customers",
    "invoices": "invoices",
    "payments": "payments",
    "payment_attempts": "payment-attempts",
}
#: The columns that identify a record of each type when the source has no id of its own
#: (payments and attempts, like CSV rows, by invoice and time).
ID_COLUMNS = {
    "customers": ("customer_id",),
    "invoices": ("invoice_number",),
    "payments": ("invoice_number", "paid_at", "amount"),
    "payment_attempts": ("invoice_number", "attempted_at"),
}
#: Called with (record type, records fetched so far) while a source pulls.
PullProgress = Callable[[str, int], None]


class SourceError(DunningError):
    """A source cannot be read (unreachable, refused credentials, a failing query)."""


@dataclass
class Record:
    """One customer, invoice, payment or payment attempt as a source has it.

    ``values`` uses the CSV import's column names and raw values (text, numbers, dates); the
    sync validates them. ``source_id`` is the record's id in the source (Stripe's ``in_...``,
    an ERP document number). ``external_id`` (payments, attempts) is the id shared with other
    paths that record the same money, e.g. the Stripe webhook's ``stripe:<payment_intent>``;
    when None the sync derives one. ``deleted`` marks an invoice deleted in the source.
    """

    source_id: str
    values: dict[str, Any]
    external_id: str | None = None
    deleted: bool = False
    #: A payment or attempt whose source names its invoice only by the source's id (Stripe's
    #: ``in_...``): the sync looks up the invoice_number among this source's invoices.
    invoice_source_id: str | None = None


@dataclass
class Pull:
    """What one pull of a source returned: records per type and the cursor to store.

    ``complete`` is true when ``invoices`` lists every invoice the source has (a full pull):
    the sync then voids this source's invoices that are no longer listed (deleted there).
    ``requests`` counts the calls made to the source (HTTP requests, SQL queries).
    """

    records: dict[str, list[Record]] = field(default_factory=lambda: {t: [] for t in RECORD_TYPES})
    cursor: str | None = None
    complete: bool = False
    requests: int = 0

    def add(self, record_type: str, record: Record) -> None:
        """Nothing; appends ``record`` to ``record_type``'s list."""
        self.records[record_type].append(record)


class Source(Protocol):
    """A place invoices live: Stripe, Xero, an SQL database, or CSV/Excel files."""

    name: str
    kind: str

    def pull(self, cursor: str | None, progress: PullProgress | None = None) -> Pull:
        """The records changed since ``cursor`` (everything when None) and the next cursor.

        Raises SourceError when the source cannot be read.
        """
        ...

    def check(self) -> str:
        """A one-line description of a successful connection; raises SourceError."""
        ...

"""Xero invoice history notes for sent reminders, through the official ``xero-python`` SDK
(docs/outbound.md).

Each sent reminder of an invoice a Xero source owns adds one history note on that invoice
(developer.xero.com "Accounting API: History and Notes", ``PUT /Invoices/{InvoiceID}/History``
with ``{"HistoryRecords": [{"Details": "…"}]}``; ``AccountingApi.create_invoice_history``).
The request carries Xero's ``Idempotency-Key`` header (developer.xero.com "Idempotent
requests") = ``dunning-reminder-<id>``, so a repeat after a lost answer does not add a second
note. The source's own credentials, tenant and 429 rule (Retry-After, bounded) are used; see
dunning/sources/xero.py. ``history_notes = "off"`` in the source's table turns notes off.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from dunning.outbound.activities import XERO_EVENTS, Facts, Refused, RetryLater
from dunning.sources.base import SourceError
from dunning.sources.config import SourceConfig

_SERVER = re.compile(r"answered 5\d\d")
#: Xero's limit on a history record's Details.
MAX_DETAILS = 2000


class XeroHistoryTarget:
    """History notes on the invoices of the configured Xero sources."""

    name: str = "xero"
    events: tuple[str, ...] = XERO_EVENTS

    def __init__(self, sources: Sequence[SourceConfig]) -> None:
        self.sources = {s.name: s for s in sources}
        self._apis: dict[str, tuple[Any, Any]] = {}

    def applies(self, facts: Facts) -> bool:
        """Only invoices a Xero source owns (with their Xero InvoiceID)."""
        return facts.invoice_source in self.sources and bool(facts.invoice_source_id)

    def _source(self, name: str) -> tuple[Any, Any]:
        from dunning.sources.xero import XeroSource

        if name not in self._apis:
            source = XeroSource(self.sources[name])
            try:
                self._apis[name] = (source, source._api())
            except SourceError as exc:
                raise Refused(str(exc)) from None
        return self._apis[name]

    def create(self, facts: Facts) -> str:
        """One history note on the invoice (developer.xero.com "History and Notes": ``PUT
        /Invoices/{InvoiceID}/History``, with an ``Idempotency-Key`` per reminder);
        ``InvoiceID:<reminder id>`` (Xero gives a history record no id of its own). Raises
        RetryLater (429 outlasting the source's waits, 5xx) or Refused."""
        from xero_python.accounting import HistoryRecord, HistoryRecords

        assert facts.invoice_source is not None and facts.invoice_source_id is not None
        source, api = self._source(facts.invoice_source)
        records = HistoryRecords(
            history_records=[HistoryRecord(details=facts.summary()[:MAX_DETAILS])]
        )
        try:
            source._call(
                api.create_invoice_history,
                invoice_id=facts.invoice_source_id,
                history_records=records,
                idempotency_key=f"dunning-{facts.key.replace(':', '-')}",
            )
        except SourceError as exc:
            message = str(exc)
            if "429" in message or "again later" in message or _SERVER.search(message):
                raise RetryLater(message, 60) from None
            raise Refused(message) from None
        except OSError as exc:
            raise RetryLater(f"Xero request failed ({type(exc).__name__})") from None
        return f"{facts.invoice_source_id}:{facts.reminder_id}"

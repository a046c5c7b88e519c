"""What a source (CSV import, Stripe, Xero, SQL sync) may change on an invoice or customer an
operator has put on hold.

An operator's dispute or pause is a decision about *our* reminders that the system of record
does not know about, so a source that re-sends yesterday's values must not undo it:

- ``invoices.disputed_by_operator`` is set by ``dunning invoice dispute``. While it is set, a
  source status ``open`` (or ``disputed``) keeps the invoice ``disputed``; a source status
  ``paid`` or ``void`` still wins (the money question is settled) and clears the flag.
- ``invoices.paused_by_operator`` / ``customers.paused_by_operator`` are set by
  ``dunning invoice pause`` / ``dunning customer pause``. While set, a source's
  ``paused_until`` may lengthen the pause but never shorten or clear it.

Every source writer calls these two functions on the values it is about to store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

#: Source statuses that settle the money question and so override an operator's dispute.
FINAL_STATUSES = ("paid", "void")


def source_invoice_status(incoming: str, stored: Mapping[str, Any] | None) -> tuple[str, bool]:
    """The (status, disputed_by_operator) to store when a source reports ``incoming`` for an
    invoice whose stored row is ``stored`` (None: a new invoice).

    ``stored`` needs ``disputed_by_operator``; a missing key counts as False.
    """
    held = bool(stored and stored.get("disputed_by_operator"))
    if incoming in FINAL_STATUSES:
        return incoming, False
    if held:
        return "disputed", True
    return incoming, False


def source_paused_until(
    incoming: dt.date | None, stored: Mapping[str, Any] | None
) -> dt.date | None:
    """The ``paused_until`` to store when a source reports ``incoming`` for a row whose stored
    values are ``stored`` (needs ``paused_until`` and ``paused_by_operator``; None: new row).

    An operator's pause is kept when the source's date is earlier or empty.
    """
    if not stored or not stored.get("paused_by_operator"):
        return incoming
    current = stored.get("paused_until")
    if current is None:
        return incoming
    if incoming is None or incoming < current:
        return current
    return incoming

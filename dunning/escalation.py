"""Escalation: an invoice whose reminder ladder is exhausted is handed to a person.

The planner marks such plan lines with the skip reason ``escalated`` (docs/policy.md, "Ladder
semantics"). A run records the hand-off once per invoice (``invoices.escalated_at``) and
emits the Prefect event ``dunning.invoice.escalated`` for exactly the invoices it newly
escalated, so an automation can notify a person or open a collections case.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine, select, update

from dunning.core.skip import SkipReason
from dunning.db.models import Invoice
from dunning.ledger.outbox import Event, emit

EVENT = "dunning.invoice.escalated"


@dataclass(frozen=True)
class Escalation:
    """One invoice newly escalated by a run (no personal data: numbers and ids only)."""

    invoice_number: str
    customer_id: str
    stage: str  # the last ladder stage sent, e.g. final_notice_r3
    days_overdue: int
    currency: str
    balance_minor: int

    def payload(self) -> dict[str, object]:
        """The event payload."""
        return {
            "invoice_number": self.invoice_number,
            "customer_id": self.customer_id,
            "last_stage": self.stage,
            "days_overdue": self.days_overdue,
            "currency": self.currency,
            "balance_minor": self.balance_minor,
        }


def record_escalations(engine: Engine, lines: pd.DataFrame, *, at: dt.datetime) -> list[Escalation]:
    """The invoices of ``lines`` (plan lines) skipped as ``escalated`` that no earlier run
    escalated; marks them escalated at ``at`` (UTC) in the same transaction, so two runs never
    both report one invoice."""
    esc = lines.loc[lines["reason"].astype(str) == SkipReason.ESCALATED.value].drop_duplicates(
        "invoice_id"
    )
    if esc.empty:
        return []
    by_id = {int(r["invoice_id"]): r for r in esc.to_dict("records")}
    out: list[Escalation] = []
    with engine.begin() as conn:
        ids = list(by_id)
        fresh = [
            i
            for (i,) in conn.execute(
                select(Invoice.id).where(Invoice.id.in_(ids), Invoice.escalated_at.is_(None))
            )
        ]
        for invoice_id in fresh:
            won = conn.execute(
                update(Invoice)
                .where(Invoice.id == invoice_id, Invoice.escalated_at.is_(None))
                .values(escalated_at=at)
            ).rowcount
            if not won:
                continue  # another run escalated it meanwhile
            row = by_id[invoice_id]
            out.append(
                esc_row := Escalation(
                    invoice_number=str(row["invoice_number"]),
                    customer_id=str(row["customer_id"]),
                    stage=str(row["stage"]),
                    days_overdue=int(row["days_overdue"]),
                    currency=str(row["currency"]),
                    balance_minor=int(row["balance_minor"]),
                )
            )
            # The outbox event of this hand-off, in the transaction that records it.
            data = {k: v for k, v in esc_row.payload().items() if k != "customer_id"}
            emit(
                conn, [Event("invoice.escalated", invoice_id, esc_row.customer_id, None, data)], at
            )
    return out

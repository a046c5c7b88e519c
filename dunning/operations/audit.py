"""The audit trail of operator actions: who, when, what, why, before and after."""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session

from dunning.db import session_scope
from dunning.db.models import OperatorAction
from dunning.ledger.outbox import Event, emit


@dataclass(frozen=True)
class Actor:
    """Who acted: an OS user at the CLI, or a Prefect flow run (its form was the tool)."""

    name: str
    flow_run_id: str | None = None

    @classmethod
    def os_user(cls) -> Actor:
        """The user running this process (``os user alice``)."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry, e.g. in a container
            user = "unknown"
        return cls(f"os user {user}")

    @classmethod
    def flow_run(cls, flow_run_id: str, name: str | None) -> Actor:
        """The Prefect flow run ``flow_run_id`` (``prefect flow run <name>``)."""
        return cls(f"prefect flow run {name or flow_run_id}", flow_run_id)


def plain(value: Any) -> Any:
    """``value`` as JSON: dates and instants ISO 8601, Decimals as strings."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def record(
    session: Session,
    actor: Actor,
    action: str,
    target: str,
    *,
    customer_id: str | None,
    invoice_id: int | None,
    reason: str | None,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    at: dt.datetime,
) -> OperatorAction:
    """The audit row of one action, added to ``session`` (committed with the change)."""
    row = OperatorAction(
        at=at,
        actor=actor.name[:200],
        flow_run_id=actor.flow_run_id,
        action=action,
        target=target[:200],
        customer_id=customer_id,
        invoice_id=invoice_id,
        reason=reason or None,
        before={k: plain(v) for k, v in before.items()},
        after={k: plain(v) for k, v in after.items()},
    )
    session.add(row)
    session.flush()
    # The reason is free text an operator typed (it may name people): it stays in the audit.
    emit(
        session,
        [
            Event(
                "operator.action",
                invoice_id,
                customer_id,
                None,
                {"action": action, "audit_id": row.id},
            )
        ],
        at,
    )
    return row


def actions_of(engine: Engine, customer_id: str, invoice_ids: list[int]) -> list[dict[str, Any]]:
    """The audit rows about ``customer_id`` or its invoices, oldest first, as plain dicts."""
    stmt = (
        select(OperatorAction)
        .where(
            or_(
                OperatorAction.customer_id == customer_id,
                OperatorAction.invoice_id.in_(invoice_ids or [-1]),
            )
        )
        .order_by(OperatorAction.at, OperatorAction.id)
    )
    with session_scope(engine) as session:
        return [
            {
                "id": a.id,
                "at": a.at,
                "actor": a.actor,
                "flow_run_id": a.flow_run_id,
                "invoice_id": a.invoice_id,
                "action": a.action,
                "target": a.target,
                "reason": a.reason,
                "before": a.before,
                "after": a.after,
            }
            for a in session.scalars(stmt)
        ]

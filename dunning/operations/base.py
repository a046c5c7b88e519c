"""What every operator action shares: the request, the refusal, the change it reports and
the context it runs in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from dunning.errors import DunningError
from dunning.operations.audit import Actor


class Refused(DunningError):
    """The action does not fit the current state or its input; nothing was changed."""


@dataclass(frozen=True)
class ActionRequest:
    """One operator action and its inputs (the flow's form fields, the CLI's arguments).

    ``record_id`` is the reminder id, inbox row id or reply id; ``date`` is the pause end,
    promise date or payment date; ``amount`` is a decimal string in the invoice's currency.
    """

    action: str
    invoice: str | None = None
    customer: str | None = None
    record_id: int | None = None
    date: dt.date | None = None
    amount: str | None = None
    reason: str | None = None
    all_errors: bool = False


@dataclass(frozen=True)
class Context:
    """When and by whom an action runs: ``now`` (UTC), its date ``today`` and the actor."""

    now: dt.datetime
    today: dt.date
    actor: Actor


@dataclass
class Change:
    """What an action changed: its target, the customer and invoice it concerns, the fields
    before and after, and a sentence on what it means for the next plan."""

    target: str
    customer_id: str | None
    invoice_id: int | None
    before: dict[str, Any]
    after: dict[str, Any]
    effect: str


def set_fields(obj: Any, **values: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set ``values`` on ``obj``; (before, after) of the fields that changed."""
    before, after = {}, {}
    for name, value in values.items():
        old = getattr(obj, name)
        if old != value:
            before[name], after[name] = old, value
            setattr(obj, name, value)
    return before, after


def need(value: Any, flag: str, action: str) -> Any:
    """``value``; Refused naming what ``action`` needs (``flag``) when it is missing."""
    if value is None or value == "":
        raise Refused(f"{action} needs {flag}")
    return value


#: An action's implementation: checks the state (raising Refused) and changes the rows.
Handler = Callable[[Session, ActionRequest, Context], Change]

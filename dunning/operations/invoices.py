"""Operator actions on invoices (pause, resume, dispute, undispute, promise, paid) and
customers (pause, resume)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dunning.db.models import Customer, Invoice
from dunning.importers import fields
from dunning.ledger.payments import balance, record_payment
from dunning.money import quantize
from dunning.operations.base import (
    ActionRequest,
    Change,
    Context,
    Handler,
    Refused,
    need,
    set_fields,
)


def _invoice(session: Session, req: ActionRequest) -> Invoice:
    number = need(req.invoice, "an invoice number", req.action)
    found = session.scalar(select(Invoice).where(Invoice.invoice_number == number))
    if found is None:
        raise Refused(
            f"no invoice numbered {number!r}; check the number (dunning ledger "
            "--invoice) or import the invoice first"
        )
    return found


def _customer(session: Session, req: ActionRequest) -> Customer:
    cid = need(req.customer, "a customer id", req.action)
    found = session.get(Customer, cid)
    if found is None or found.erased_at is not None:
        raise Refused(
            f"no customer {cid!r}"
            + (" (erased)" if found else "")
            + "; check the id (dunning customer show ID)"
        )
    return found


def _open_invoice(session: Session, req: ActionRequest, verb: str) -> Invoice:
    invoice = _invoice(session, req)
    if invoice.status in ("paid", "void"):
        raise Refused(
            f"invoice {invoice.invoice_number} is {invoice.status}; there is nothing to {verb}"
        )
    return invoice


def _future(req: ActionRequest, today: dt.date, what: str) -> dt.date:
    day = need(req.date, "a date (--until / --on)", req.action)
    if day <= today:
        raise Refused(
            f"{what} {day} is not after today ({today}); a pause ends on its date, "
            "so give a later one"
        )
    return day


def _amount(req: ActionRequest, invoice: Invoice, due: Decimal) -> Decimal:
    text = need(req.amount, "an amount (--amount)", req.action)
    try:
        value = fields.amount(text, invoice.currency, allow_zero=False)
    except ValueError as exc:
        raise Refused(f"--amount {text!r}: {exc}") from None
    if value > due:
        raise Refused(
            f"--amount {value} exceeds the balance {due} {invoice.currency} of "
            f"invoice {invoice.invoice_number}"
        )
    return value


def _invoice_change(
    invoice: Invoice, values: tuple[dict[str, Any], dict[str, Any]], effect: str
) -> Change:
    before, after = values
    return Change(
        f"invoice {invoice.invoice_number}", invoice.customer_id, invoice.id, before, after, effect
    )


def _pause(
    target: Any, label: str, until: dt.date, change: Callable[..., Change], effect: str
) -> Change:
    """Pause ``target`` (an Invoice or a Customer) until ``until``; Refused if already so."""
    if target.paused_until == until:
        raise Refused(f"{label} is already paused until {until}")
    return change(target, set_fields(target, paused_until=until, paused_by_operator=True), effect)


def _resume(target: Any, label: str, today: dt.date, change: Callable[..., Change]) -> Change:
    """Lift ``target``'s pause; Refused if it is not paused beyond ``today``."""
    if target.paused_until is None or target.paused_until <= today:
        raise Refused(f"{label} is not paused; nothing to resume")
    return change(
        target,
        set_fields(target, paused_until=None, paused_by_operator=False),
        "Reminders resume with the next run.",
    )


def _invoice_pause(s: Session, req: ActionRequest, ctx: Context) -> Change:
    invoice = _open_invoice(s, req, "pause")
    until = _future(req, ctx.today, "--until")
    effect = f"No reminders for it before {until} (plan: invoice_paused)."
    return _pause(invoice, f"invoice {invoice.invoice_number}", until, _invoice_change, effect)


def _invoice_resume(s: Session, req: ActionRequest, ctx: Context) -> Change:
    invoice = _invoice(s, req)
    return _resume(invoice, f"invoice {invoice.invoice_number}", ctx.today, _invoice_change)


def _invoice_dispute(s: Session, req: ActionRequest, ctx: Context) -> Change:
    invoice = _open_invoice(s, req, "dispute")
    if invoice.status == "disputed":
        raise Refused(f"invoice {invoice.invoice_number} is already disputed")
    return _invoice_change(
        invoice,
        set_fields(invoice, status="disputed", disputed_by_operator=True),
        "No reminders until it is undisputed (plan: disputed); sources "
        "cannot reopen it, a source status of paid or void still wins.",
    )


def _invoice_undispute(s: Session, req: ActionRequest, ctx: Context) -> Change:
    invoice = _invoice(s, req)
    if invoice.status != "disputed":
        raise Refused(
            f"invoice {invoice.invoice_number} is {invoice.status}, not disputed; "
            "nothing to undispute"
        )
    status = "open" if balance(s, invoice) > 0 else "paid"
    return _invoice_change(
        invoice,
        set_fields(invoice, status=status, disputed_by_operator=False),
        "Reminders resume with the next run."
        if status == "open"
        else "Nothing is due on it any more.",
    )


def _invoice_promise(s: Session, req: ActionRequest, ctx: Context) -> Change:
    invoice = _open_invoice(s, req, "promise")
    on = need(req.date, "a date (--on)", req.action)
    if on < ctx.today:
        raise Refused(
            f"--on {on} is before today ({ctx.today}); a promise to pay is for today or later"
        )
    due = quantize(balance(s, invoice), invoice.currency)
    amount = _amount(req, invoice, due) if req.amount else None
    values = set_fields(
        invoice, promise_to_pay_on=on, promise_amount=amount, promise_made_on=ctx.today
    )
    shown = f"{amount} {invoice.currency}" if amount is not None else "the balance"
    return _invoice_change(
        invoice,
        values,
        f"Promise to pay {shown} by {on}: no reminders "
        "until then (plan: promise_to_pay), then promise_broken if unpaid.",
    )


def _invoice_paid(s: Session, req: ActionRequest, ctx: Context) -> Change:
    invoice = _invoice(s, req)
    if invoice.status == "void":
        raise Refused(f"invoice {invoice.invoice_number} is void; a payment cannot be recorded")
    due = quantize(balance(s, invoice), invoice.currency)
    if due <= 0:
        raise Refused(
            f"invoice {invoice.invoice_number} has nothing due (balance {due} "
            f"{invoice.currency}); it is already paid"
        )
    amount = _amount(req, invoice, due)
    if req.date is not None and req.date > ctx.today:
        raise Refused(f"--on {req.date} is in the future; record a payment once it arrived")
    paid_at = dt.datetime.combine(req.date, dt.time(), dt.UTC) if req.date else ctx.now
    key = f"operator:{invoice.invoice_number}:{paid_at.isoformat()}:{amount}"
    before = {"balance": due, "status": invoice.status}
    kinds = record_payment(s, invoice, amount, paid_at, key, "operator")
    if not kinds:
        raise Refused(
            f"a payment of {amount} {invoice.currency} at {paid_at.isoformat()} is "
            f"already recorded for invoice {invoice.invoice_number}"
        )
    after = {"balance": quantize(balance(s, invoice), invoice.currency), "status": invoice.status}
    if after["status"] == before["status"]:
        del before["status"], after["status"]
    return Change(
        f"invoice {invoice.invoice_number}",
        invoice.customer_id,
        invoice.id,
        before,
        after,
        f"Payment of {amount} {invoice.currency} recorded ({', '.join(kinds)}).",
    )


def _customer_change(
    customer: Customer, values: tuple[dict[str, Any], dict[str, Any]], effect: str
) -> Change:
    before, after = values
    return Change(
        f"customer {customer.customer_id}", customer.customer_id, None, before, after, effect
    )


def _customer_pause(s: Session, req: ActionRequest, ctx: Context) -> Change:
    customer = _customer(s, req)
    until = _future(req, ctx.today, "--until")
    effect = f"No reminders to them before {until} (plan: customer_paused)."
    return _pause(customer, f"customer {customer.customer_id}", until, _customer_change, effect)


def _customer_resume(s: Session, req: ActionRequest, ctx: Context) -> Change:
    customer = _customer(s, req)
    return _resume(customer, f"customer {customer.customer_id}", ctx.today, _customer_change)


#: The implementations, by action name.
HANDLERS: dict[str, Handler] = {
    "invoice_pause": _invoice_pause,
    "invoice_resume": _invoice_resume,
    "invoice_dispute": _invoice_dispute,
    "invoice_undispute": _invoice_undispute,
    "invoice_promise": _invoice_promise,
    "invoice_paid": _invoice_paid,
    "customer_pause": _customer_pause,
    "customer_resume": _customer_resume,
}

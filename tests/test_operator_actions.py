"""Operator actions on a real database: each changes the next plan as documented, leaves an
audit row, and refuses a wrong state with a clear message and no change."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from dunning.db import session_scope
from dunning.db.models import Customer, Invoice, OperatorAction, Payment, Reminder
from dunning.importers import import_file
from dunning.operations.actions import ActionRequest, Refused, perform
from dunning.operations.audit import Actor
from tests.factories import add_customer, add_invoice
from tests.operate_support import AS_OF, line, next_plan

ALICE = Actor("os user alice")
DAY = AS_OF.date()


@pytest.fixture
def book(engine: Engine) -> Engine:
    """Customer C1 with overdue INV-1 and INV-2 (100.00 USD each), a paid and a void one."""
    add_customer(engine, "C1")
    add_invoice(engine, "INV-1", "C1", due_on=dt.date(2026, 11, 10))
    add_invoice(engine, "INV-2", "C1", due_on=dt.date(2026, 11, 10))
    add_invoice(engine, "INV-PAID", "C1", status="paid")
    add_invoice(engine, "INV-VOID", "C1", status="void")
    return engine


def act(engine: Engine, action: str, **fields: Any) -> Any:
    return perform(engine, ActionRequest(action, **fields), ALICE, now=AS_OF)


def audit(engine: Engine) -> list[OperatorAction]:
    with session_scope(engine) as s:
        rows = list(s.scalars(select(OperatorAction).order_by(OperatorAction.id)))
        s.expunge_all()
        return rows


def refused(engine: Engine, action: str, match: str, **fields: Any) -> None:
    """The action is refused with ``match`` in its message and writes no audit row."""
    before = len(audit(engine))
    with pytest.raises(Refused, match=match):
        act(engine, action, **fields)
    assert len(audit(engine)) == before


def test_invoice_pause_and_resume(book: Engine) -> None:
    assert line(next_plan(book), "INV-1", "email")[0] == "send"
    result = act(
        book,
        "invoice_pause",
        invoice="INV-1",
        date=DAY + dt.timedelta(days=10),
        reason="customer on holiday",
    )
    assert "paused_until — → 2026-12-04" in result.message()
    assert line(next_plan(book), "INV-1", "email") == ("skip", "invoice_paused")
    assert line(next_plan(book), "INV-2", "email")[0] == "send"
    (row,) = audit(book)
    assert (row.actor, row.action, row.target, row.reason) == (
        "os user alice",
        "invoice_pause",
        "invoice INV-1",
        "customer on holiday",
    )
    assert row.before == {"paused_until": None, "paused_by_operator": False}
    assert row.after == {"paused_until": "2026-12-04", "paused_by_operator": True}
    assert row.at == AS_OF and row.customer_id == "C1"

    act(book, "invoice_resume", invoice="INV-1")
    assert line(next_plan(book), "INV-1", "email")[0] == "send"
    refused(book, "invoice_resume", "is not paused", invoice="INV-1")


def test_invoice_pause_refusals(book: Engine) -> None:
    later = DAY + dt.timedelta(days=5)
    refused(book, "invoice_pause", "INV-PAID is paid", invoice="INV-PAID", date=later)
    refused(book, "invoice_pause", "INV-VOID is void", invoice="INV-VOID", date=later)
    refused(book, "invoice_pause", "not after today", invoice="INV-1", date=DAY)
    refused(book, "invoice_pause", "needs a date", invoice="INV-1")
    refused(book, "invoice_pause", "no invoice numbered 'NOPE'", invoice="NOPE", date=later)
    with pytest.raises(Refused, match="unknown action 'invoice_delete'"):
        act(book, "invoice_delete", invoice="INV-1")


def test_dispute_holds_against_a_reimport_until_paid_or_void(book: Engine, tmp_path: Path) -> None:
    act(book, "invoice_dispute", invoice="INV-1", reason="wrong quantity")
    assert line(next_plan(book), "INV-1", "email") == ("skip", "disputed")
    refused(book, "invoice_dispute", "already disputed", invoice="INV-1")
    refused(book, "invoice_dispute", "INV-PAID is paid", invoice="INV-PAID")

    csv = tmp_path / "invoices.csv"
    header = "invoice_number,customer_id,currency,amount,issued_on,due_on,status\n"
    csv.write_text(header + "INV-1,C1,USD,100.00,2026-10-01,2026-11-10,open\n")
    import_file(book, "invoices", csv)
    assert line(next_plan(book), "INV-1", "email") == ("skip", "disputed")

    csv.write_text(header + "INV-1,C1,USD,100.00,2026-10-01,2026-11-10,void\n")
    import_file(book, "invoices", csv)
    with session_scope(book) as s:
        invoice = s.scalar(select(Invoice).where(Invoice.invoice_number == "INV-1"))
        assert invoice is not None
        assert (invoice.status, invoice.disputed_by_operator) == ("void", False)


def test_undispute(book: Engine) -> None:
    refused(book, "invoice_undispute", "is open, not disputed", invoice="INV-1")
    act(book, "invoice_dispute", invoice="INV-1")
    result = act(book, "invoice_undispute", invoice="INV-1")
    assert result.after == {"status": "open", "disputed_by_operator": False}
    assert line(next_plan(book), "INV-1", "email")[0] == "send"


def test_promise_to_pay(book: Engine) -> None:
    on = DAY + dt.timedelta(days=7)
    act(book, "invoice_promise", invoice="INV-1", date=on, amount="60", reason="phone call")
    assert line(next_plan(book), "INV-1", "email") == ("skip", "promise_to_pay")
    with session_scope(book) as s:
        invoice = s.scalar(select(Invoice).where(Invoice.invoice_number == "INV-1"))
        assert invoice is not None
        assert (invoice.promise_to_pay_on, invoice.promise_amount, invoice.promise_made_on) == (
            on,
            Decimal("60"),
            DAY,
        )
    broken = next_plan(book, AS_OF + dt.timedelta(days=8))
    row = broken[(broken["invoice_number"] == "INV-1") & (broken["channel"] == "email")]
    assert str(row["stage"].iloc[0]) == "promise_broken"

    refused(
        book,
        "invoice_promise",
        "exceeds the balance 100.00 USD",
        invoice="INV-2",
        date=on,
        amount="100.01",
    )
    refused(book, "invoice_promise", "--amount '10.005'", invoice="INV-2", date=on, amount="10.005")
    refused(book, "invoice_promise", "before today", invoice="INV-2", date=DAY - dt.timedelta(1))
    refused(book, "invoice_promise", "INV-VOID is void", invoice="INV-VOID", date=on)


def test_paid_goes_through_the_payment_path(book: Engine) -> None:
    with session_scope(book) as s:
        invoice_id = s.scalar(select(Invoice.id).where(Invoice.invoice_number == "INV-1"))
        s.add(
            Reminder(
                invoice_id=invoice_id,
                customer_id="C1",
                stage="overdue_2",
                channel="email",
                status="planned",
            )
        )
    part = act(book, "invoice_paid", invoice="INV-1", amount="40", date=DAY)
    assert part.after == {"balance": Decimal("60.00")}
    assert line(next_plan(book), "INV-1", "email")[0] == "send"
    refused(book, "invoice_paid", "already recorded", invoice="INV-1", amount="40", date=DAY)
    refused(book, "invoice_paid", "exceeds the balance 60.00", invoice="INV-1", amount="61")
    refused(
        book,
        "invoice_paid",
        "in the future",
        invoice="INV-1",
        amount="1",
        date=DAY + dt.timedelta(days=1),
    )
    act(book, "invoice_paid", invoice="INV-1", amount="60.00")
    assert "INV-1" not in set(next_plan(book)["invoice_number"])  # paid: not considered
    with session_scope(book) as s:
        assert s.scalar(select(Invoice.status).where(Invoice.invoice_number == "INV-1")) == "paid"
        assert s.scalar(select(Reminder.reason)) == "paid"
        sources = set(s.scalars(select(Payment.source)))
    assert sources == {"operator"}
    refused(book, "invoice_paid", "nothing due", invoice="INV-1", amount="1")
    refused(book, "invoice_paid", "void", invoice="INV-VOID", amount="1")


def test_customer_pause_survives_a_source_with_an_earlier_date(
    book: Engine, tmp_path: Path
) -> None:
    until = DAY + dt.timedelta(days=30)
    act(book, "customer_pause", customer="C1", date=until)
    assert line(next_plan(book), "INV-1", "email") == ("skip", "customer_paused")
    csv = tmp_path / "customers.csv"
    csv.write_text(
        "customer_id,country,timezone,locale,paused_until\nC1,US,America/New_York,en_US,\n"
    )
    import_file(book, "customers", csv)
    with session_scope(book) as s:
        assert s.get_one(Customer, "C1").paused_until == until
    assert line(next_plan(book), "INV-1", "email") == ("skip", "customer_paused")
    act(book, "customer_resume", customer="C1")
    assert line(next_plan(book), "INV-1", "email")[0] == "send"
    refused(book, "customer_pause", "no customer 'C9'", customer="C9", date=until)
    refused(book, "customer_resume", "not paused", customer="C1")


def _reminder(engine: Engine, status: str, lease: dt.datetime | None = None) -> int:
    with session_scope(engine) as s:
        invoice_id = s.scalar(select(Invoice.id).where(Invoice.invoice_number == "INV-1"))
        row = Reminder(
            invoice_id=invoice_id,
            customer_id="C1",
            stage="overdue_2",
            channel="email",
            status=status,
            claimed_by="run-x",
            claimed_at=AS_OF - dt.timedelta(hours=1),
            lease_expires_at=lease,
            reason="process stopped after claiming" if status == "unknown" else None,
        )
        s.add(row)
        s.flush()
        return row.id


def test_resolve_unknown_as_sent_consumes_the_stage(book: Engine) -> None:
    rid = _reminder(book, "unknown")
    act(book, "reminder_resolve_sent", record_id=rid, reason="SendGrid activity shows it")
    with session_scope(book) as s:
        row = s.get_one(Reminder, rid)
        assert (row.status, row.sent_at) == ("sent", AS_OF - dt.timedelta(hours=1))
    refused(book, "reminder_resolve_sent", f"reminder {rid} is sent", record_id=rid)
    refused(book, "reminder_resolve_requeue", "no reminder 999", record_id=999)


def test_resolve_a_stale_claim_by_requeueing_and_refuse_a_live_one(book: Engine) -> None:
    live = _reminder(book, "claimed", lease=AS_OF + dt.timedelta(minutes=5))
    refused(book, "reminder_resolve_requeue", "wait for its lease", record_id=live)
    with session_scope(book) as s:
        s.get_one(Reminder, live).lease_expires_at = AS_OF - dt.timedelta(minutes=1)
    act(book, "reminder_resolve_requeue", record_id=live)
    with session_scope(book) as s:
        row = s.get_one(Reminder, live)
        assert (row.status, row.claimed_by, row.lease_expires_at) == ("planned", None, None)
    (row_audit,) = audit(book)
    assert row_audit.before["status"] == "claimed" and row_audit.after["status"] == "planned"


def test_every_action_is_audited_once(book: Engine) -> None:
    later = DAY + dt.timedelta(days=3)
    act(book, "invoice_pause", invoice="INV-1", date=later)
    act(book, "invoice_dispute", invoice="INV-2")
    act(book, "customer_pause", customer="C1", date=later)
    with session_scope(book) as s:
        counts = dict(
            s.execute(
                select(OperatorAction.action, func.count()).group_by(OperatorAction.action)
            ).all()
        )
    assert counts == {"invoice_pause": 1, "invoice_dispute": 1, "customer_pause": 1}


def test_every_action_has_one_implementation() -> None:
    from dunning.operations import actions

    assert set(actions._HANDLERS) == set(actions.ACTIONS)

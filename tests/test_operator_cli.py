"""The operator commands from the shell: each prints what changed, refusals exit 1 with the
reason, --json is one object."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import Engine, func, select
from typer.testing import CliRunner, Result

from dunning.cli import _load_commands, app
from dunning.db import session_scope
from dunning.db.models import OperatorAction
from tests.factories import add_customer, add_invoice

runner = CliRunner()


def dunning(*args: str) -> Result:
    _load_commands()
    return runner.invoke(app, list(args))


def test_commands_print_the_change_and_refuse_wrong_states(engine: Engine) -> None:
    add_customer(engine, "C1")
    add_invoice(engine, "INV-1", "C1", due_on=dt.date(2026, 11, 10))
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=14)).date().isoformat()

    paused = dunning("invoice", "pause", "INV-1", "--until", until, "--reason", "holiday")
    assert paused.exit_code == 0, paused.stderr
    assert f"invoice INV-1: paused_until — → {until}" in paused.stdout

    paid = dunning("invoice", "paid", "INV-1", "--amount", "100.00", "--json")
    assert paid.exit_code == 0, paid.stderr
    change = json.loads(paid.stdout)
    assert change["after"] == {"balance": "0.00", "status": "paid"}
    assert change["audit_id"] is not None

    again = dunning("invoice", "pause", "INV-1", "--until", until)
    assert again.exit_code == 1
    assert "error: invoice INV-1 is paid; there is nothing to pause" in again.stderr

    for args, message in (
        (("invoice", "promise", "INV-1", "--on", "3.12.2026"), "--on '3.12.2026' is not a date"),
        (("reminder", "resolve", "7", "--as", "done"), "--as 'done' is not sent or requeue"),
        (("inbox", "retry"), "give an inbox row id or --all-errors"),
        (("customer", "pause", "C404", "--until", until), "no customer 'C404'"),
    ):
        result = dunning(*args)
        assert result.exit_code != 0 and message in result.stderr, (args, result.stderr)
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(OperatorAction.id))) == 2


def test_replies_open_lists_nothing_on_an_empty_inbox(engine: Engine) -> None:
    result = dunning("replies", "--open", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    assert dunning("replies", "--open").stdout.strip() == "no open replies"


def test_each_command_changes_the_next_plan(engine: Engine) -> None:
    from dunning.db.models import Invoice, Reminder
    from tests.operate_support import line, next_plan

    add_customer(engine, "C1")
    add_customer(engine, "C2")
    for number, customer in (("INV-2", "C1"), ("INV-3", "C1"), ("INV-5", "C2")):
        add_invoice(engine, number, customer, due_on=dt.date(2026, 11, 10))
    now = dt.datetime.now(dt.UTC)
    until = (now + dt.timedelta(days=14)).date().isoformat()
    for args, number, reason in (
        (("invoice", "dispute", "INV-2", "--reason", "wrong quantity"), "INV-2", "disputed"),
        (
            ("invoice", "promise", "INV-3", "--on", until, "--amount", "10"),
            "INV-3",
            "promise_to_pay",
        ),
        (("customer", "pause", "C2", "--until", until), "INV-5", "customer_paused"),
    ):
        result = dunning(*args)
        assert result.exit_code == 0, result.stderr
        assert line(next_plan(engine, now), number, "email") == ("skip", reason), args
    with session_scope(engine) as s:
        invoice = s.scalar(select(Invoice.id).where(Invoice.invoice_number == "INV-2"))
        row = Reminder(
            invoice_id=invoice,
            customer_id="C1",
            stage="overdue_1",
            channel="email",
            status="unknown",
            reason="process stopped after claiming",
            claimed_at=now - dt.timedelta(hours=1),
        )
        s.add(row)
        s.flush()
        rid = row.id
    resolved = dunning("reminder", "resolve", str(rid), "--as", "sent")
    assert resolved.exit_code == 0 and "status unknown → sent" in resolved.stdout
    again = dunning("reminder", "resolve", str(rid), "--as", "requeue")
    assert again.exit_code == 1 and f"reminder {rid} is sent" in again.stderr
    nothing = dunning("inbox", "retry", "--all-errors")
    assert nothing.exit_code == 1 and "no inbox rows are in error" in nothing.stderr
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(OperatorAction.id))) == 4

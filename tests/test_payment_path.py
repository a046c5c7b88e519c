"""One payment path: a CSV-imported payment settles, attributes and stops reminders exactly as
a webhook's does (dunning.ledger.payments.record_payments)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, select
from typer.testing import CliRunner

from dunning.cli import _load_commands, app
from dunning.db import session_scope
from dunning.db.models import Invoice, Payment, Reminder
from dunning.tracking import NewPayment, record_payment, record_payments
from tests.factories import add_customer, add_invoice
from tests.tracking_support import SENT_AT, seed

runner = CliRunner()


def import_payments(tmp_path: Path, rows: str) -> None:
    path = tmp_path / "payments.csv"
    path.write_text("invoice_number,amount,paid_at\n" + rows, encoding="utf-8")
    _load_commands()
    result = runner.invoke(app, ["import", "payments", str(path), "--json"])
    assert result.exit_code == 0, result.stdout


def test_imported_payment_settles_attributes_and_stops_reminders(
    engine: Engine, tmp_path: Path
) -> None:
    ids = seed(
        engine,
        reminders=[
            ("due", "email", "sent"),
            ("overdue_1", "email", None),
            ("overdue_1", "sms", "claimed"),
        ],
    )
    import_payments(tmp_path, "INV-1,60.00,2026-03-04T08:00:00Z\nINV-1,40.00,2026-03-06\n")
    with session_scope(engine) as s:
        assert s.get_one(Invoice, ids["invoice"]).status == "paid"
        sent = s.get_one(Reminder, ids["due/email"])
        # The first payment after the reminder, not the one that settled the invoice.
        assert sent.paid_at == dt.datetime(2026, 3, 4, 8, tzinfo=dt.UTC)
        for key in ("overdue_1/email", "overdue_1/sms"):
            row = s.get_one(Reminder, ids[key])
            assert (row.status, row.reason) == ("skipped", "paid")


def test_an_earlier_payment_recorded_later_moves_paid_at_back(engine: Engine) -> None:
    ids = seed(engine, reminders=[("due", "email", "sent")])
    with session_scope(engine) as s:
        inv = s.get_one(Invoice, ids["invoice"])
        late, early = SENT_AT + dt.timedelta(days=9), SENT_AT + dt.timedelta(days=2)
        assert record_payment(s, inv, Decimal(10), late, "stripe:pi_late", "stripe") == ["payment"]
        assert record_payment(s, inv, Decimal(10), early, "csv:x", "import") == ["payment"]
        assert record_payment(s, inv, Decimal(10), early, "csv:x", "import") == []
        before = record_payment(
            s, inv, Decimal(5), SENT_AT - dt.timedelta(days=1), "csv:y", "import"
        )
        assert before == ["payment"]
    with session_scope(engine) as s:
        assert s.get_one(Reminder, ids["due/email"]).paid_at == early


def test_batches_across_chunks_settle_every_invoice_once(engine: Engine) -> None:
    add_customer(engine)
    invoices = [add_invoice(engine, f"INV-{i}", amount=Decimal("4.00")) for i in range(3)]
    at = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    batch = [
        NewPayment(
            invoices[i % 3], Decimal("0.01"), at + dt.timedelta(seconds=i), f"csv:{i}", "import"
        )
        for i in range(1200)
    ]
    batch.append(batch[0])  # a repeat inside the batch is recorded once
    with session_scope(engine) as s:
        kinds = record_payments(s, batch)
    assert sum(k.count("payment") for k in kinds) == 1200 and kinds[-1] == []
    with session_scope(engine) as s:
        assert len(list(s.scalars(select(Payment.id)))) == 1200
        assert {i.status for i in s.scalars(select(Invoice))} == {"paid"}
    assert sum(k.count("invoice_paid") for k in kinds) == 3

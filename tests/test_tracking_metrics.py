"""Metrics from the ledger's per-reminder timestamps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine
from tracking_support import SENT_AT, seed
from typer.testing import CliRunner

from dunning.cli import _load_commands, app
from dunning.db import session_scope
from dunning.db.models import Reminder
from dunning.tracking.metrics import compute_metrics, to_markdown, to_records

runner = CliRunner()
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


def stamp(engine: Engine, rid: int, **values: object) -> None:
    with session_scope(engine) as s:
        r = s.get_one(Reminder, rid)
        for k, v in values.items():
            setattr(r, k, v)


def test_rates_by_channel(engine: Engine) -> None:
    ids = seed(
        engine,
        reminders=[
            ("due", "email", "sent"),
            ("overdue_1", "email", "sent"),
            ("due", "sms", "sent"),
            ("overdue_1", "sms", "sent"),
            ("overdue_2", "sms", None),
        ],
    )
    stamp(
        engine,
        ids["due/email"],
        status="clicked",
        delivered_at=SENT_AT + H,
        clicked_at=SENT_AT + 2 * H,
        paid_at=SENT_AT + 2 * D,
    )
    stamp(engine, ids["overdue_1/email"], status="bounced", bounced_at=SENT_AT + H)
    stamp(
        engine,
        ids["due/sms"],
        status="replied",
        delivered_at=SENT_AT + H,
        replied_at=SENT_AT + 3 * H,
        paid_at=SENT_AT + 10 * D,
    )
    stamp(engine, ids["overdue_1/sms"], status="delivered", delivered_at=SENT_AT + H)
    rows = {r["channel"]: r for r in to_records(compute_metrics(engine, by=["channel"]))}
    email, sms = rows["email"], rows["sms"]
    assert (email["sent"], email["delivered"], email["bounced"]) == (2, 1, 1)
    assert (email["delivery_rate"], email["bounce_rate"]) == (0.5, 0.5)
    assert (email["open_rate"], email["click_rate"]) == (0.5, 0.5)  # a click implies an open
    assert email["reply_rate"] is None  # no SMS in the group
    assert (email["paid_3d_rate"], email["paid_14d_rate"]) == (0.5, 0.5)
    assert (sms["sent"], sms["delivery_rate"], sms["reply_rate"]) == (2, 1.0, 0.5)
    assert (sms["paid_7d"], sms["paid_14d"], sms["open_rate"]) == (0, 1, None)
    total = to_records(compute_metrics(engine, by=[]))
    assert total[0]["scope"] == "all" and total[0]["sent"] == 4  # the planned one is not sent
    assert "| channel |" in to_markdown(compute_metrics(engine, by=["channel"]))


def test_empty_ledger_and_unknown_dimension(engine: Engine) -> None:
    assert to_records(compute_metrics(engine, by=["stage", "week"])) == []
    with pytest.raises(ValueError, match="cannot group by colour"):
        compute_metrics(engine, by=["colour"])


def test_outbox_and_smtp_sends_are_never_in_a_delivery_rate(engine: Engine) -> None:
    ids = seed(
        engine,
        reminders=[
            ("due", "email", "sent"),
            ("overdue_1", "email", "sent"),
            ("overdue_2", "email", "sent"),
            ("due", "sms", "sent"),
        ],
    )
    stamp(engine, ids["due/email"], status="delivered", delivered_at=SENT_AT + H)
    stamp(engine, ids["overdue_1/email"], provider="outbox")
    stamp(engine, ids["overdue_2/email"], provider="smtp")
    stamp(engine, ids["due/sms"], status="delivered", delivered_at=SENT_AT + H)
    rows = {r["provider"]: r for r in to_records(compute_metrics(engine, by=["provider"]))}
    assert set(rows) == {"sendgrid", "outbox", "smtp", "twilio"}
    assert (rows["outbox"]["sent"], rows["outbox"]["delivery_rate"]) == (1, None)
    assert (rows["smtp"]["sent"], rows["smtp"]["bounce_rate"]) == (1, None)
    assert rows["sendgrid"]["delivery_rate"] == 1.0
    total = to_records(compute_metrics(engine, by=[]))[0]
    # 4 sent, 2 through providers that report delivery, both delivered.
    assert (total["sent"], total["tracked"], total["delivery_rate"]) == (4, 2, 1.0)


def test_csv_payment_shows_in_paid_7d_once_seven_days_passed(
    engine: Engine, tmp_path: Path
) -> None:
    ids = seed(engine, reminders=[("due", "email", "sent")])
    path = tmp_path / "payments.csv"
    path.write_text("invoice_number,amount,paid_at\nINV-1,100.00,2026-03-04T10:00:00Z\n")
    _load_commands()
    assert runner.invoke(app, ["import", "payments", str(path)]).exit_code == 0
    with session_scope(engine) as s:
        assert s.get_one(Reminder, ids["due/email"]).paid_at == SENT_AT + 2 * D + H
    early = to_records(compute_metrics(engine, by=[], as_of=SENT_AT + 3 * D))[0]
    assert (early["paid_3d_rate"], early["paid_3d_n"]) == (1.0, 1)
    assert (early["paid_7d"], early["paid_7d_n"], early["paid_7d_rate"]) == (0, 0, None)
    assert "n/a" in to_markdown(
        compute_metrics(engine, by=["stage", "channel"], as_of=SENT_AT + 3 * D)
    )
    later = to_records(compute_metrics(engine, by=[], as_of=SENT_AT + 7 * D))[0]
    assert (later["paid_7d"], later["paid_7d_n"], later["paid_7d_rate"]) == (1, 1, 1.0)
    shown = runner.invoke(app, ["metrics", "--by", "stage", "--as-of", "2026-03-05T09:00:00Z"])
    assert shown.exit_code == 0 and "n/a" in shown.stdout

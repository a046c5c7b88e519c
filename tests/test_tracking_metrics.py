"""Metrics from the ledger's per-reminder timestamps."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine
from tracking_support import SENT_AT, seed

from dunning.db import session_scope
from dunning.db.models import Reminder
from dunning.tracking.metrics import compute_metrics, to_markdown, to_records

H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


def stamp(engine: Engine, rid: int, **values: object) -> None:
    with session_scope(engine) as s:
        r = s.get_one(Reminder, rid)
        for k, v in values.items():
            setattr(r, k, v)


def test_rates_by_channel(engine: Engine) -> None:
    ids = seed(engine, reminders=[("due", "email", "sent"), ("overdue_1", "email", "sent"),
                                  ("due", "sms", "sent"), ("overdue_1", "sms", "sent"),
                                  ("overdue_2", "sms", None)])
    stamp(engine, ids["due/email"], status="clicked", delivered_at=SENT_AT + H,
          clicked_at=SENT_AT + 2 * H, paid_at=SENT_AT + 2 * D)
    stamp(engine, ids["overdue_1/email"], status="bounced", bounced_at=SENT_AT + H)
    stamp(engine, ids["due/sms"], status="replied", delivered_at=SENT_AT + H,
          replied_at=SENT_AT + 3 * H, paid_at=SENT_AT + 10 * D)
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

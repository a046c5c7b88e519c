"""Pure tracking rules: rank table, provider outcomes, SMS keywords."""

from __future__ import annotations

import datetime as dt

import pytest

from dunning.core.status import moves_forward
from dunning.tracking.status import (
    parse_keyword,
    sendgrid_outcome,
    twilio_outcome,
)


@pytest.mark.parametrize(
    ("current", "new", "expected"),
    [
        ("sent", "delivered", True),
        ("opened", "delivered", False),
        ("clicked", "opened", False),
        ("delivered", "bounced", True),
        ("bounced", "delivered", False),
        ("unknown", "delivered", True),
        ("skipped", "delivered", False),
        ("delivered", "replied", True),
    ],
)
def test_status_only_moves_forward(current: str, new: str, expected: bool) -> None:
    assert moves_forward(current, new) is expected


@pytest.mark.parametrize(
    ("body", "keyword", "date"),
    [
        ("STOP", "stop", None),
        (" stopall ", "stop", None),
        ("Unsubscribe.", "stop", None),
        ("cancel", "stop", None),
        ("END", "stop", None),
        ("quit!", "stop", None),
        ("START", "start", None),
        ("unstop", "start", None),
        ("PAID", "paid", None),
        ("paid 2026-03-03", "paid", dt.date(2026, 3, 3)),
        ("Paid: 03.03.2026", "paid", dt.date(2026, 3, 3)),
        ("please stop calling me", None, None),
        ("unpaid?", None, None),
    ],
)
def test_keywords(body: str, keyword: str | None, date: dt.date | None) -> None:
    parsed = parse_keyword(body)
    assert (parsed.keyword, parsed.paid_on) == (keyword, date)


def test_provider_outcomes() -> None:
    hard = sendgrid_outcome({"event": "bounce", "type": "bounce"})
    soft = sendgrid_outcome({"event": "bounce", "type": "blocked"})
    assert hard is not None and hard.invalid_address and hard.status == "bounced"
    assert soft is not None and not soft.invalid_address
    spam = sendgrid_outcome({"event": "spamreport"})
    assert spam is not None and (spam.status, spam.opt_out) == (None, "email")
    assert sendgrid_outcome({"event": "something_new"}) is None
    failed = twilio_outcome("failed", "21610")
    assert failed is not None and (failed.status, failed.opt_out) == ("failed_permanent", "sms")
    undelivered = twilio_outcome("undelivered", "30003")
    assert undelivered is not None and undelivered.reason == "twilio undelivered (error 30003)"
    assert twilio_outcome("queued", None) is not None and twilio_outcome("nope", None) is None

"""Provider error classification tables, Retry-After parsing and the token bucket."""

from __future__ import annotations

import datetime as dt

import pytest
from channel_support import FakeClock

from dunning.channels.errors import (
    classify_network,
    classify_sendgrid,
    classify_smtp,
    classify_twilio,
    retry_after_seconds,
)
from dunning.channels.ratelimit import TokenBucket

NOW = dt.datetime(2026, 3, 2, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("status", "code", "transient", "opt_out", "invalid", "auth"),
    [
        (400, 21211, False, False, True, False),
        (400, 21610, False, True, False, False),
        (400, 21408, False, False, False, False),
        (400, 21612, False, False, True, False),
        (400, 21614, False, False, True, False),
        (429, 20429, True, False, False, False),
        (400, 20429, True, False, False, False),
        (500, None, True, False, False, False),
        (503, 20500, True, False, False, False),
        (401, 20003, False, False, False, True),
        (401, None, False, False, False, True),
        (400, 21602, False, False, False, False),
        (404, 20404, False, False, False, False),
    ],
)
def test_twilio_table(
    status: int, code: int | None, transient: bool, opt_out: bool, invalid: bool, auth: bool
) -> None:
    f = classify_twilio(status, code, "msg for +4915112345678")
    assert (f.transient, f.opt_out, f.invalid_address, f.auth) == (
        transient,
        opt_out,
        invalid,
        auth,
    )
    assert f.error_code == (str(code) if code else f"http_{status}")
    assert "+4915112345678" not in f.error


@pytest.mark.parametrize(
    ("status", "transient", "auth"),
    [
        (400, False, False),
        (403, False, False),
        (413, False, False),
        (401, False, True),
        (429, True, False),
        (500, True, False),
        (502, True, False),
        (503, True, False),
        (404, False, False),
    ],
)
def test_sendgrid_table(status: int, transient: bool, auth: bool) -> None:
    f = classify_sendgrid(status, '{"errors":[{"message":"bad jane@example.com"}]}')
    assert (f.transient, f.auth) == (transient, auth)
    assert f.error_code == f"http_{status}"
    assert "jane@example.com" not in f.error


def test_sendgrid_429_takes_rate_limit_reset() -> None:
    reset = str(int(NOW.timestamp()) + 30)
    f = classify_sendgrid(429, "", {"X-RateLimit-Reset": reset}, now=NOW)
    assert f.transient and f.retry_after == 30.0


def test_twilio_429_takes_retry_after() -> None:
    f = classify_twilio(429, 20429, "Too Many Requests", {"retry-after": "7"}, now=NOW)
    assert f.retry_after == 7.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "12"}, 12.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": "Mon, 02 Mar 2026 12:01:00 GMT"}, 60.0),
        ({"Retry-After": "Mon, 02 Mar 2026 11:00:00 GMT"}, 0.0),
        ({"X-RateLimit-Reset": str(int(NOW.timestamp()) + 5)}, 5.0),
        ({"Retry-After": "3", "X-RateLimit-Reset": str(int(NOW.timestamp()) + 99)}, 3.0),
        ({"Retry-After": "soon"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after(headers: dict[str, str] | None, expected: float | None) -> None:
    assert retry_after_seconds(headers, NOW) == expected


@pytest.mark.parametrize(
    ("code", "transient", "invalid", "auth"),
    [
        (421, True, False, False),
        (450, True, False, False),
        (550, False, True, False),
        (553, False, True, False),
        (554, False, False, False),
        (535, False, False, True),
    ],
)
def test_smtp_table(code: int, transient: bool, invalid: bool, auth: bool) -> None:
    f = classify_smtp(code, "mailbox unavailable")
    assert (f.transient, f.invalid_address, f.auth) == (transient, invalid, auth)


def test_network_errors_are_transient() -> None:
    assert classify_network(TimeoutError("timed out")).error_code == "timeout"
    f = classify_network(ConnectionRefusedError("refused"))
    assert f.transient and f.error_code == "connection_error"


def test_failure_result_carries_fields() -> None:
    r = classify_twilio(400, 21610, "unsubscribed").result(42, "twilio")
    assert (r.reminder_id, r.ok, r.provider, r.error_code, r.opt_out) == (
        42,
        False,
        "twilio",
        "21610",
        True,
    )


def test_token_bucket_paces_after_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2, capacity=2, clock=clock, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(5)]
    # capacity 2: two immediate, then one every half second
    assert waits == [0.0, 0.0, 0.5, 0.5, 0.5]
    assert clock.now == pytest.approx(1.5)


def test_token_bucket_by_default_never_exceeds_the_rate_in_any_second() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=4, clock=clock, sleep=clock.sleep)
    sent_at = []
    for _ in range(40):
        bucket.acquire()
        sent_at.append(clock.now)
    for start in sent_at:
        assert sum(1 for t in sent_at if start <= t < start + 1.0) <= 4


def test_token_bucket_refills_while_idle() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1, clock=clock, sleep=clock.sleep)
    assert bucket.acquire() == 0.0
    clock.now += 10
    assert bucket.acquire() == 0.0
    assert bucket.acquire() == pytest.approx(1.0)


def test_token_bucket_zero_is_unlimited() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=0, clock=clock, sleep=clock.sleep)
    assert all(bucket.acquire() == 0.0 for _ in range(1000))
    assert clock.slept == []


def test_token_bucket_rejects_negative_rate() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=-1)

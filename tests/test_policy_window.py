"""Send window and local calendar: time zones, DST, weekends, holidays."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dunning.policy.model import SendWindow
from dunning.policy.window import local_day, window_state
from tests.policy_support import POLICY, actions, lines, portfolio, utc

WINDOW = POLICY.send_window


@pytest.mark.parametrize(
    ("as_of", "tz", "country", "reason", "not_before"),
    [
        # Tuesday 11:00 in Berlin: inside.
        ("2026-11-24T10:00Z", "Europe/Berlin", "DE", "", "2026-11-24T10:00Z"),
        # 08:00 in Berlin: later the same day.
        ("2026-11-24T07:00Z", "Europe/Berlin", "DE", "outside_send_window", "2026-11-24T08:00Z"),
        # 18:00 in Berlin: the end is exclusive, next morning.
        ("2026-11-24T17:00Z", "Europe/Berlin", "DE", "outside_send_window", "2026-11-25T08:00Z"),
        # Friday 19:30 CEST before the clocks go back: Monday 09:00 CET is 08:00 UTC, not 07:00.
        ("2026-10-23T17:30Z", "Europe/Berlin", "DE", "outside_send_window", "2026-10-26T08:00Z"),
        # Saturday in New York; Monday 09:00 EST after the US change on 1 November.
        ("2026-10-31T15:00Z", "America/New_York", "US", "weekend", "2026-11-02T14:00Z"),
        # Thanksgiving in the US: Friday 09:00 EST.
        ("2026-11-26T15:00Z", "America/New_York", "US", "holiday", "2026-11-27T14:00Z"),
        # Christmas (Friday) in Germany, then the weekend: Monday 28th.
        ("2026-12-25T10:00Z", "Europe/Berlin", "DE", "holiday", "2026-12-28T08:00Z"),
        # Thanksgiving is no holiday in Germany.
        ("2026-11-26T10:00Z", "Europe/Berlin", "DE", "", "2026-11-26T10:00Z"),
        # UTC Monday 23:30 is Tuesday 08:30 in Tokyo: before the window on the local day.
        ("2026-11-23T23:30Z", "Asia/Tokyo", "JP", "outside_send_window", "2026-11-24T00:00Z"),
    ],
)
def test_window_state(as_of, tz, country, reason, not_before):
    got_reason, start = window_state(utc(as_of).to_pydatetime(), tz, country, WINDOW)
    assert (got_reason, start) == (reason, utc(not_before).to_pydatetime())


@pytest.mark.parametrize(
    ("as_of", "tz", "expected"),
    [
        ("2026-11-24T23:30Z", "Asia/Tokyo", date(2026, 11, 25)),
        ("2026-11-25T03:00Z", "America/Los_Angeles", date(2026, 11, 24)),
        ("2026-11-24T12:00Z", "UTC", date(2026, 11, 24)),
        ("2026-11-24T11:00Z", "Pacific/Kiritimati", date(2026, 11, 25)),  # UTC+14
    ],
)
def test_local_day_differs_from_utc_day(as_of, tz, expected):
    assert local_day(utc(as_of).to_pydatetime(), tz) == expected


def test_due_stage_counts_days_in_the_customer_time_zone():
    # 2026-11-24T23:30Z: still the 24th in UTC, already the 25th (the due date) in Tokyo.
    as_of = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    tokyo = portfolio({"timezone": "Asia/Tokyo", "country": "JP"}, {"due_on": date(2026, 11, 25)})
    got = lines(tokyo, as_of)
    assert set(got) == {("due", "email"), ("due", "sms")}
    assert got[("due", "email")]["days_overdue"] == 0
    assert got[("due", "email")]["action"] == "defer"  # 08:30 local
    assert got[("due", "email")]["not_before"] == utc("2026-11-25T00:00Z")
    utc_customer = portfolio({"timezone": "UTC", "country": "GB"}, {"due_on": date(2026, 11, 25)})
    assert set(actions(utc_customer, as_of)) == {("pre_due", "email")}


def test_due_date_on_a_weekend_defers_then_catches_up_on_monday():
    due = date(2026, 11, 28)  # Saturday
    p = portfolio(invoice={"due_on": due})
    saturday = lines(p, datetime(2026, 11, 28, 10, 0, tzinfo=UTC))
    assert {k: (r["action"], r["reason"]) for k, r in saturday.items()} == {
        ("due", "email"): ("defer", "weekend"),
        ("due", "sms"): ("defer", "weekend"),
    }
    assert saturday[("due", "email")]["not_before"] == utc("2026-11-30T08:00Z")
    # Monday: overdue_1 is reached; the unsent due reminder is not sent as well.
    monday = actions(p, datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    assert monday == {("overdue_1", "email"): "send", ("overdue_1", "sms"): "send"}


def test_skipped_lines_have_no_not_before_and_deferred_lines_a_window_start():
    p = portfolio({"sms_consent": False}, days_overdue=1)
    got = lines(p, datetime(2026, 11, 24, 20, 0, tzinfo=UTC))
    assert got[("overdue_1", "sms")]["reason"] == "no_sms_consent"
    assert pd.isna(got[("overdue_1", "sms")]["not_before"])
    assert got[("overdue_1", "email")]["not_before"] == utc("2026-11-25T08:00Z")


EVERY_DAY = SendWindow(
    start_minute=2 * 60 + 30, end_minute=6 * 60, weekdays=frozenset(range(7)), skip_holidays=False
)


@pytest.mark.parametrize(
    ("as_of", "tz", "start", "not_before"),
    [
        # New York springs forward on Sun 2026-03-08 at 02:00 EST to 03:00 EDT: 02:30 does not
        # exist; the window opens at the first instant that does, 03:00 EDT (07:00Z), not at
        # 03:30 EDT (02:30 read with the old offset).
        ("2026-03-08T06:00Z", "America/New_York", 150, "2026-03-08T07:00Z"),
        ("2026-03-07T12:00Z", "America/New_York", 150, "2026-03-08T07:00Z"),  # from the day before
        # Berlin: 02:00 CET -> 03:00 CEST on Sun 2026-03-29; 03:00 CEST is 01:00Z.
        ("2026-03-28T23:00Z", "Europe/Berlin", 150, "2026-03-29T01:00Z"),
        # Lord Howe Island moves by 30 minutes (02:00 -> 02:30, +10:30 -> +11) on 2026-10-04.
        ("2026-10-03T15:00Z", "Australia/Lord_Howe", 135, "2026-10-03T15:30Z"),
        # A start that exists twice (autumn, 01:30 in New York on 2026-11-01) is its first.
        ("2026-11-01T04:00Z", "America/New_York", 90, "2026-11-01T05:30Z"),
    ],
)
def test_window_starting_in_a_dst_gap_opens_at_the_first_instant_that_exists(
    as_of, tz, start, not_before
):
    window = dataclasses.replace(EVERY_DAY, start_minute=start)
    reason, opens = window_state(utc(as_of).to_pydatetime(), tz, "US", window)
    assert (reason, opens) == ("outside_send_window", utc(not_before).to_pydatetime())


_DST_ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Beirut",
    "America/Havana",
    "Pacific/Auckland",
]


def _transition_days() -> list[tuple[str, date]]:
    """(zone, local date) of every UTC-offset change of _DST_ZONES in 2025-2028."""
    days = []
    for zone in _DST_ZONES:
        tz = ZoneInfo(zone)
        day = date(2025, 1, 1)
        while day < date(2029, 1, 1):
            before = datetime(day.year, day.month, day.day, tzinfo=tz).utcoffset()
            after = (
                datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(days=1)
            ).utcoffset()
            if before != after:
                days.append((zone, day))
            day += timedelta(days=1)
    return days


_ANY_DAY = st.tuples(
    st.sampled_from(_DST_ZONES), st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31))
)


@settings(max_examples=400, deadline=None)
@given(
    zone_day=st.one_of(st.sampled_from(_transition_days()), _ANY_DAY),
    minute=st.integers(min_value=0, max_value=1439),
)
def test_window_start_is_the_first_instant_at_or_after_the_wall_clock_time(zone_day, minute):
    # Property of _at: the instant shows the asked wall-clock time when that time exists, and
    # otherwise (a DST gap) it is the end of the gap: a second earlier the clock still read
    # before the asked time.
    from dunning.policy.window import _at

    zone, day = zone_day
    tz = ZoneInfo(zone)
    asked = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
    got = _at(day, minute, tz)
    wall = got.astimezone(tz).replace(tzinfo=None)
    assert wall >= asked
    if wall != asked:
        assert (got - timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None) < asked
        assert wall - asked <= timedelta(hours=1)


def test_preload_calendars_imports_the_country_calendars_in_the_background() -> None:
    """A reminder run calls this first so the planner does not pay for the import; checked
    in a fresh interpreter, where nothing has imported the calendars yet."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from dunning.policy.window import preload_calendars\n"
        "assert 'holidays.countries' not in sys.modules, 'imported before the preload'\n"
        "thread = preload_calendars()\n"
        "assert thread.daemon\n"
        "thread.join(60)\n"
        "assert 'holidays.countries' in sys.modules\n"
    )
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=False
    )
    assert done.returncode == 0, done.stderr

"""Customer-local calendar and the send window, computed once per (time zone, country, region).

A local day is closed for reminders when it is in a company blackout (policy ``blackout``),
a public holiday of the customer's country and region (``holidays`` with ``subdiv``), or not
one of the window's weekdays.
"""

from __future__ import annotations

import importlib
import threading
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import numpy as np
import pandas as pd

from dunning.core.skip import SkipReason
from dunning.policy.model import SendWindow
from dunning.regions import default_region, holiday_subdivision


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    """The zone called ``name``; unknown names fall back to UTC (import validates zones)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def preload_calendars() -> threading.Thread:
    """Import the ``holidays`` package's country calendars in a background thread and return
    it (a daemon; nothing to join). The first ``holiday_dates`` call imports every country
    module (0.3-0.4 s of CPU), and a Prefect worker starts each flow run in a fresh process:
    a run that calls this first pays for it while the portfolio loads (mostly waiting on
    the database) instead of in the planner. A failed import is left for ``holiday_dates``
    to raise in the caller's thread."""

    def load() -> None:
        try:
            importlib.import_module("holidays.countries")
        except Exception:  # noqa: BLE001 - the planner's own import reports it
            return

    thread = threading.Thread(target=load, name="dunning-preload-calendars", daemon=True)
    thread.start()
    return thread


@lru_cache(maxsize=4096)
def holiday_dates(country: str, year: int, subdiv: str | None = None) -> frozenset[date]:
    """Public holidays of ``country`` in ``year``, with those of subdivision ``subdiv`` (the
    ``holidays`` package's code, ``NSW``) when given; empty for countries it does not know."""
    try:
        return frozenset(holidays.country_holidays(country, subdiv=subdiv, years=year).keys())
    except NotImplementedError:
        return frozenset()


def local_day(as_of: datetime, timezone: str) -> date:
    """The calendar date of ``as_of`` in ``timezone``."""
    return as_of.astimezone(_zone(timezone)).date()


def local_days(timezones: pd.Series, as_of: datetime) -> np.ndarray:
    """Per row, the local date (datetime64[D]) of ``as_of`` in the row's time zone."""
    tz = timezones.astype("category")
    lookup = np.array(
        [np.datetime64(local_day(as_of, str(z)), "D") for z in tz.cat.categories]
        + [np.datetime64(as_of.date(), "D")]
    )
    return lookup[tz.cat.codes.to_numpy()]  # code -1 (missing zone) picks UTC, the last entry


def _closed_reason(day: date, country: str, subdiv: str | None, window: SendWindow) -> str:
    """Why no reminder goes out on ``day`` ("blackout"/"holiday"/"weekend"), or "" when it is
    a send day."""
    if any(first <= day <= last for first, last in window.blackout):
        return SkipReason.BLACKOUT.value
    if window.skip_holidays and day in holiday_dates(country, day.year, subdiv):
        return SkipReason.HOLIDAY.value
    if day.weekday() not in window.weekdays:
        return SkipReason.WEEKEND.value
    return ""


def _at(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of local wall-clock time ``minute`` after midnight of ``day`` in ``zone``.

    A wall-clock time that does not exist (inside a spring-forward gap: 02:30 on a day the
    clocks jump from 02:00 to 03:00) becomes the first instant that exists after it, the end
    of the gap (03:00 local). A time that exists twice (autumn) is its first occurrence.
    """
    naive = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
    utc = ZoneInfo("UTC")
    first = naive.replace(tzinfo=zone, fold=0).astimezone(utc)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    # Not a wall-clock time of this zone: fold=0 read it with the offset before the jump and
    # fold=1 with the offset after it; the jump itself is the earlier of the two instants'
    # later reading, i.e. the transition instant.
    second = naive.replace(tzinfo=zone, fold=1).astimezone(utc)
    return _transition(min(first, second), max(first, second), zone)


def _transition(low: datetime, high: datetime, zone: ZoneInfo) -> datetime:
    """The first instant in (low, high] whose UTC offset in ``zone`` differs from low's."""
    before = low.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):  # bisection: gaps are at most a day wide
        mid = low + (high - low) / 2
        if mid.astimezone(zone).utcoffset() == before:
            low = mid
        else:
            high = mid
    return high.replace(microsecond=0)


def window_state(
    as_of: datetime,
    timezone: str,
    country: str,
    window: SendWindow,
    region: str | None = None,
) -> tuple[str, datetime]:
    """("" and as_of) when ``as_of`` is inside the window, else (reason, next window start, UTC).

    ``region`` is the customer's ISO 3166-2 subdivision (``AU-NSW``): its public holidays
    close the day too. Reasons: blackout, holiday, weekend, outside_send_window.
    """
    zone = _zone(timezone)
    subdiv = holiday_subdivision(region, country)
    local = as_of.astimezone(zone)
    minute = local.hour * 60 + local.minute
    reason = _closed_reason(local.date(), country, subdiv, window)
    if not reason:
        if window.start_minute <= minute < window.end_minute:
            return "", as_of
        reason = SkipReason.OUTSIDE_SEND_WINDOW.value
        if minute < window.start_minute:
            return reason, _at(local.date(), window.start_minute, zone)
    day = local.date()
    for _ in range(366):
        day += timedelta(days=1)
        if not _closed_reason(day, country, subdiv, window):
            return reason, _at(day, window.start_minute, zone)
    raise ValueError("the send window never opens: check send_window.weekdays and blackout")


def window_frame(
    timezones: pd.Series,
    countries: pd.Series,
    as_of: datetime,
    window: SendWindow,
    regions: pd.Series | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, (defer reason, "" inside the window) and not_before (UTC datetime64[ns]).

    ``regions`` (ISO 3166-2 codes) add regional holidays; a row without one takes the
    region its time zone names (``dunning.regions.default_region``: Australia/Sydney ->
    AU-NSW). The window is computed once per distinct (time zone, country, region), not per
    row.
    """
    keys = pd.DataFrame(
        {
            "tz": timezones.astype(str).to_numpy(),
            "cc": countries.astype(str).to_numpy(),
            "region": (
                regions.fillna("").astype(str).to_numpy()
                if regions is not None
                else np.full(len(timezones), "", dtype=object)
            ),
        }
    )
    codes, uniques = pd.MultiIndex.from_frame(keys).factorize()
    reasons, starts = [], []
    for tz, cc, region in uniques:
        reason, start = window_state(as_of, tz, cc, window, region or default_region(tz, cc))
        reasons.append(reason)
        starts.append(np.datetime64(start.replace(tzinfo=None), "ns"))
    return np.array(reasons, dtype=object)[codes], np.array(starts, dtype="datetime64[ns]")[codes]

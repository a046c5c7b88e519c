"""Regional holidays and company blackout dates: customers.region (ISO 3166-2) from the import
or the time zone, the `holidays` package's subdivisions in the send window, `blackout` in the
policy."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from dunning.cli import _load_commands, app
from dunning.db.models import Customer
from dunning.errors import PolicyError
from dunning.policy import load_policy, plan
from dunning.policy.loader import parse_policy
from dunning.policy.window import window_frame, window_state
from dunning.portfolio import load_portfolio
from dunning.regions import (
    REGION_BY_ZONE,
    default_region,
    holiday_subdivision,
    parse_region,
    subdivisions,
)
from tests.policy_support import POLICY, utc

runner = CliRunner()
WINDOW = POLICY.send_window
#: ../shared/cases/onboarding: Sunday 22:30 UTC is Monday 2026-12-28 09:30 in Sydney, the day
#: New South Wales observes Boxing Day (Saturday the 26th); no national holiday in Australia.
SYDNEY_MONDAY = datetime(2026, 12, 27, 22, 30, tzinfo=UTC)
CUSTOMERS = """customer_id,name,email,phone,country,timezone,locale,sms_consent,email_opt_out,sms_opt_out,paused_until
AC-01,Olivia Brown,olivia@brown-pty.example.com.au,0412 345 678,AU,Australia/Sydney,en_AU,yes,no,no,
AC-02,Mason Reed,mason.reed@example.com,(310) 555-0142,US,America/Los_Angeles,en_US,yes,no,no,
AC-10,Jack Wilson,jack@wilson.example.com.au,+61 2 9374 4000,AU,Australia/Sydney,en_AU,no,no,no,2026-12-10
"""  # noqa: E501
INVOICES = """invoice_number,customer_id,currency,amount,issued_on,due_on,status,payment_link,promise_to_pay_on
A-1002,AC-01,AUD,450.50,2026-11-10,2026-12-10,open,https://pay.example.com/A-1002,
A-1004,AC-02,USD,75.00,2026-11-01,2026-12-01,open,,
A-1020,AC-10,AUD,310.00,2026-11-12,2026-12-12,open,,
"""  # noqa: E501


def _import(kind: str, path: Path) -> dict[str, Any]:
    _load_commands()
    result = runner.invoke(app, ["import", kind, str(path), "--json"])
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def _write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def _regions(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        return dict(conn.execute(select(Customer.customer_id, Customer.region)).all())


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        ("NSW", "AU", "AU-NSW"),
        ("au-nsw", "AU", "AU-NSW"),
        ("ON", "CA", "CA-ON"),
        ("GB-SCT", "GB", "GB-SCT"),
        ("BY", "DE", "DE-BY"),
        ("HI", "US", "US-HI"),
    ],
)
def test_parse_region(value: str, country: str, expected: str) -> None:
    assert parse_region(value, country) == expected
    assert holiday_subdivision(expected, country) == expected.split("-")[1]


@pytest.mark.parametrize(
    ("value", "country", "problem"),
    [
        ("CA-ON", "AU", "is a region of CA, not of the customer's country AU"),
        ("XYZ", "AU", "is not a subdivision of AU; use an ISO 3166-2 code such as AU-ACT"),
        ("NSW Western", "AU", "is not a subdivision of AU"),
        ("13", "JP", "no regional holidays are known for JP; leave region empty"),
    ],
)
def test_parse_region_refuses_what_holidays_does_not_know(
    value: str, country: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_region(value, country)


@pytest.mark.parametrize(
    ("zone", "country", "region"),
    [
        ("Australia/Sydney", "AU", "AU-NSW"),
        ("Australia/Perth", "AU", "AU-WA"),
        ("America/Toronto", "CA", "CA-ON"),
        ("America/Vancouver", "CA", "CA-BC"),
        ("Pacific/Honolulu", "US", "US-HI"),
        # A zone that spans a whole country names no region; nor does a zone of another country.
        ("Europe/Berlin", "DE", None),
        ("America/New_York", "US", None),
        ("Australia/Sydney", "NZ", None),
    ],
)
def test_default_region_from_time_zone(zone: str, country: str, region: str | None) -> None:
    assert default_region(zone, country) == region


def test_every_default_region_is_a_valid_region() -> None:
    for zone, region in REGION_BY_ZONE.items():
        country = region.split("-")[0]
        assert parse_region(region, country) == region, zone


def test_sydney_customer_is_not_planned_on_boxing_day_observed() -> None:
    # Before regions, only Australia's national holidays applied: the 28th was a send day.
    reason, start = window_state(SYDNEY_MONDAY, "Australia/Sydney", "AU", WINDOW, "AU-NSW")
    assert (reason, start) == ("holiday", datetime(2026, 12, 28, 22, 0, tzinfo=UTC))
    assert window_state(SYDNEY_MONDAY, "Australia/Sydney", "AU", WINDOW) == ("", SYDNEY_MONDAY)
    # window_frame, as the planner calls it: an empty region takes the time zone's.
    reasons, starts = window_frame(
        pd.Series(["Australia/Sydney", "Australia/Sydney", "Australia/Brisbane"]),
        pd.Series(["AU", "AU", "AU"]),
        SYDNEY_MONDAY,
        WINDOW,
        pd.Series([None, "AU-NSW", None]),
    )
    assert list(reasons) == ["holiday", "holiday", "holiday"]  # Queensland observes it too
    perth = window_frame(
        pd.Series(["Australia/Perth"]),
        pd.Series(["AU"]),
        datetime(2027, 1, 26, 2, 0, tzinfo=UTC),
        WINDOW,
        pd.Series([""]),
    )
    assert list(perth[0]) == ["holiday"]  # Australia Day, national


def test_onboarding_case_sydney_defers_on_the_28th(engine: Engine, tmp_path: Path) -> None:
    assert _import("customers", _write(tmp_path, "c.csv", CUSTOMERS))["ok"]
    assert _import("invoices", _write(tmp_path, "i.csv", INVOICES))["ok"]
    # No region column: the import stores the region the time zone names.
    assert _regions(engine) == {"AC-01": "AU-NSW", "AC-02": None, "AC-10": "AU-NSW"}
    lines = plan(load_portfolio(engine), SYDNEY_MONDAY, load_policy())
    sydney = lines.loc[lines["customer_id"].isin(["AC-01", "AC-10"])]
    skipped = sydney.loc[sydney["action"] == "skip"]
    assert set(skipped["reason"]) <= {"no_sms_consent"}  # AC-10 never agreed to SMS
    sydney = sydney.loc[sydney["action"] != "skip"]
    assert set(sydney["customer_id"]) == {"AC-01", "AC-10"}
    assert set(sydney["action"]) == {"defer"} and set(sydney["reason"]) == {"holiday"}
    assert set(sydney["not_before"]) == {pd.Timestamp("2026-12-28T22:00Z")}  # Tue 09:00 AEDT


def test_import_region_column(engine: Engine, tmp_path: Path) -> None:
    rows = CUSTOMERS.replace("paused_until\n", "paused_until,region\n", 1)
    rows = rows.replace("en_AU,yes,no,no,\n", "en_AU,yes,no,no,,act\n")  # AC-01 in Canberra
    rows = rows.replace("en_US,yes,no,no,\n", "en_US,yes,no,no,,US-CA\n")
    rows = rows.replace("2026-12-10\n", "2026-12-10,\n")  # empty: the zone's region
    assert _import("customers", _write(tmp_path, "c.csv", rows))["ok"]
    assert _regions(engine) == {"AC-01": "AU-ACT", "AC-02": "US-CA", "AC-10": "AU-NSW"}
    # A file without the column leaves stored regions alone.
    assert _import("customers", _write(tmp_path, "same.csv", CUSTOMERS))["unchanged"] == 3
    assert _regions(engine)["AC-01"] == "AU-ACT"
    bad = rows.replace(",US-CA\n", ",ON\n")
    payload = _import("customers", _write(tmp_path, "bad.csv", bad))
    assert not payload["ok"]
    assert payload["errors"] == [
        "line 3: region: 'ON' is not a subdivision of US; use an ISO 3166-2 code such as "
        f"US-AK (known: {', '.join(sorted(subdivisions('US')))})"
    ]


def test_blackout_in_the_policy_defers_with_reason_blackout() -> None:
    policy = parse_policy(
        {**_policy_data(), "blackout": [{"from": date(2026, 12, 24), "to": "2027-01-01"}]}
    )
    assert policy.send_window.blackout == ((date(2026, 12, 24), date(2027, 1, 1)),)
    assert policy.voice_window.blackout == policy.send_window.blackout
    # Tue 29 Dec, 11:00 in Berlin: blackout; Fri 1 Jan is in it too, then the weekend.
    reason, start = window_state(
        utc("2026-12-29T10:00Z").to_pydatetime(), "Europe/Berlin", "DE", policy.send_window
    )
    assert (reason, start) == ("blackout", datetime(2027, 1, 4, 8, 0, tzinfo=UTC))
    before = window_state(
        utc("2026-12-23T10:00Z").to_pydatetime(), "Europe/Berlin", "DE", policy.send_window
    )
    assert before[0] == ""


@pytest.mark.parametrize(
    ("blackout", "problem"),
    [
        ("2026-12-24", "key 'blackout' must be a list"),
        ([{"from": "2026-12-24"}], r"key 'blackout\[0\]' must be a table"),
        ([{"from": "24.12.2026", "to": "2027-01-01"}], r"key 'blackout\[0\].from' must be a date"),
        (
            [{"from": "2027-01-01", "to": "2026-12-24"}],
            r"key 'blackout\[0\].to' must not be before",
        ),
        ([{"from": "2026-01-01", "to": "2027-01-01"}], "must be less than a year after from"),
    ],
)
def test_blackout_is_validated(blackout: Any, problem: str) -> None:
    with pytest.raises(PolicyError, match=problem):
        parse_policy({**_policy_data(), "blackout": blackout})


def test_blackout_lines_in_the_plan() -> None:
    from tests.policy_support import portfolio

    policy = dataclasses.replace(
        POLICY,
        send_window=dataclasses.replace(
            POLICY.send_window, blackout=((date(2026, 11, 24), date(2026, 11, 25)),)
        ),
    )
    lines = plan(portfolio(days_overdue=6), utc("2026-11-24T10:00Z").to_pydatetime(), policy)
    assert set(lines["action"]) == {"defer"} and set(lines["reason"]) == {"blackout"}


def _policy_data() -> dict[str, Any]:
    import tomllib

    from dunning.policy.loader import DEFAULT_POLICY_PATH

    return tomllib.loads(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))

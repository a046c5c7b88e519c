"""The pure import core: files read from disk, validated against a Context, no database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from dunning.errors import ImportFailed
from dunning.importers import KINDS, Context, InvoiceRef, Plan, plan_import
from dunning.importers.reader import read_table


def _plan(tmp_path: Path, kind: str, text: str, ctx: Context | None = None) -> Plan:
    path = tmp_path / f"{kind}.csv"
    path.write_text(text, encoding="utf-8")
    return plan_import(KINDS[kind], read_table(path), ctx or Context())


def _errors(plan: Plan) -> list[str]:
    return [str(e) for e in sorted(plan.errors)]


CUSTOMER_HEADER = "customer_id,name,email,phone,country,timezone,locale,sms_consent\n"


def test_phone_is_normalised_to_e164_using_the_customer_country(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        "customers",
        CUSTOMER_HEADER
        + "C-1,Jo,jo@example.com,0151 23456789,DE,Europe/Berlin,de-DE,yes\n"
        + "C-2,Al,al@example.com,(201) 555-0123,US,America/New_York,en_US,\n",
    )
    assert plan.errors == []
    by_id = {r["customer_id"]: r for r in plan.inserts}
    assert by_id["C-1"]["phone"] == "+4915123456789"
    assert by_id["C-1"]["locale"] == "de_DE"
    assert by_id["C-1"]["sms_consent"] is True
    assert by_id["C-2"]["phone"] == "+12015550123"
    assert by_id["C-2"]["sms_consent"] is False  # empty boolean is false


def test_invalid_customer_cells_are_each_reported_without_repeating_personal_data(
    tmp_path: Path,
) -> None:
    plan = _plan(
        tmp_path,
        "customers",
        CUSTOMER_HEADER + "C-1,Jo,jo.example.com,12,XX,Europe/Berln,xx_YY,maybe\n",
    )
    errors = _errors(plan)
    assert errors == [
        "line 2: country: 'XX' is not an ISO 3166 alpha-2 country code (e.g. US, DE, JP)",
        "line 2: email: not a valid email address: An email address must have an @-sign.",
        "line 2: locale: 'xx_YY' is not a known locale (e.g. en_US, de_DE, ja_JP)",
        "line 2: phone: not a phone number; use E.164 such as +14155550123",
        "line 2: sms_consent: 'maybe' is not a boolean (use true/false, yes/no or 1/0)",
        "line 2: timezone: 'Europe/Berln' is not an IANA time zone (e.g. Europe/Berlin)",
    ]
    assert plan.inserts == []


def test_duplicate_customer_id_in_one_file_is_rejected(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        "customers",
        "customer_id,country,timezone,locale\n"
        "C-1,US,America/Chicago,en_US\nC-1,US,America/Chicago,en_US\n",
    )
    assert _errors(plan) == ["line 3: customer_id: duplicate customer_id 'C-1' (first on line 2)"]


INVOICE_HEADER = "invoice_number,customer_id,currency,amount,issued_on,due_on\n"
KNOWN = Context(customers=frozenset({"C-1"}))


def test_unknown_customer_id_is_named(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        "invoices",
        INVOICE_HEADER + "INV-1,C-404,USD,10.00,2026-01-01,2026-01-31\n",
        KNOWN,
    )
    assert _errors(plan) == [
        "line 2: customer_id: unknown customer 'C-404'; import it with "
        "`dunning import customers` first"
    ]


def test_duplicate_invoice_number_in_one_file(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        "invoices",
        INVOICE_HEADER
        + "INV-1,C-1,USD,10.00,2026-01-01,2026-01-31\n"
        + "INV-2,C-1,USD,10.00,2026-01-01,2026-01-31\n"
        + "INV-1,C-1,USD,12.00,2026-01-01,2026-01-31\n",
        KNOWN,
    )
    assert _errors(plan) == [
        "line 4: invoice_number: duplicate invoice_number 'INV-1' (first on line 2)"
    ]
    assert [r["invoice_number"] for r in plan.inserts] == ["INV-1", "INV-2"]


def test_unparseable_date_and_due_before_issue(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        "invoices",
        INVOICE_HEADER
        + "INV-1,C-1,USD,10.00,2026-02-30,2026-03-31\n"
        + "INV-2,C-1,USD,10.00,2026-03-10,2026-03-01\n",
        KNOWN,
    )
    assert _errors(plan) == [
        "line 2: issued_on: '2026-02-30' is not a date (expected YYYY-MM-DD)",
        "line 3: due_on: 2026-03-01 is before issued_on 2026-03-10",
    ]


def test_amounts_follow_the_currency_exponent_and_are_never_negative(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        "invoices",
        INVOICE_HEADER
        + "INV-1,C-1,JPY,100.50,2026-01-01,2026-01-31\n"
        + "INV-2,C-1,USD,-5.00,2026-01-01,2026-01-31\n"
        + "INV-3,C-1,XYZ,5,2026-01-01,2026-01-31\n"
        + "INV-4,C-1,JPY,5400,2026-01-01,2026-01-31\n",
        KNOWN,
    )
    assert _errors(plan) == [
        "line 2: amount: '100.50' has more than 0 decimal places allowed for JPY",
        "line 3: amount: -5.00 is negative; amounts must be zero or more",
        "line 4: currency: 'XYZ' is not an ISO 4217 currency code (e.g. USD, EUR, JPY)",
    ]
    assert plan.inserts[0]["amount"] == Decimal("5400")
    assert plan.inserts[0]["status"] == "open"  # absent optional column: the default


def test_payments_may_not_exceed_the_balance_including_earlier_rows(tmp_path: Path) -> None:
    ctx = Context(invoices={"INV-1": InvoiceRef(7, "USD", Decimal("100.0000"), Decimal("30"))})
    plan = _plan(
        tmp_path,
        "payments",
        "invoice_number,amount,paid_at\n"
        "INV-1,50.00,2026-01-05\nINV-1,20.01,2026-01-06\nINV-1,20.00,2026-01-07\n",
        ctx,
    )
    assert _errors(plan) == [
        "line 3: amount: 20.01 exceeds the balance 20.00 USD of invoice INV-1 "
        "(amount 100.00 minus 80.00 already paid)"
    ]
    assert [p["amount"] for p in plan.inserts] == [Decimal("50.00"), Decimal("20.00")]


def test_payment_instants_are_utc_and_external_ids_deterministic(tmp_path: Path) -> None:
    ctx = Context(invoices={"INV-1": InvoiceRef(7, "USD", Decimal("100"), Decimal("0"))})
    plan = _plan(
        tmp_path,
        "payments",
        "invoice_number,amount,paid_at\n"
        "INV-1,12.5,2026-01-05\nINV-1,1,2026-01-05T10:00:00\n"
        "INV-1,2,2026-01-05T10:00:00+02:00\nINV-9,1,05/01/2026\n",
        ctx,
    )
    assert [p["external_id"] for p in plan.inserts] == [
        "csv:INV-1:2026-01-05T00:00:00+00:00:12.50",
        "csv:INV-1:2026-01-05T10:00:00+00:00:1.00",
        "csv:INV-1:2026-01-05T08:00:00+00:00:2.00",
    ]
    assert plan.inserts[2]["paid_at"] == dt.datetime(2026, 1, 5, 8, tzinfo=dt.UTC)
    assert _errors(plan) == [
        "line 5: invoice_number: unknown invoice 'INV-9'; import it with "
        "`dunning import invoices` first",
        "line 5: paid_at: '05/01/2026' is not a date or date-time (expected YYYY-MM-DD or "
        "ISO 8601 YYYY-MM-DDTHH:MM:SS with an optional offset such as +02:00 or Z)",
    ]


def test_line_numbers_are_physical_lines(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        "invoices",
        INVOICE_HEADER
        + '"INV-1",C-1,USD,1.00,2026-01-01,2026-01-31\n\n'
        + '"INV\n2",C-1,USD,1.00,2026-01-01,2026-01-31\n'
        + "INV-3,C-1,USD,1.00,2026-01-01,bad\n",
        KNOWN,
    )
    assert _errors(plan) == ["line 6: due_on: 'bad' is not a date (expected YYYY-MM-DD)"]


def test_header_problems_name_the_columns(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed) as exc:
        _plan(tmp_path, "invoices", "invoice_number,customer,currency,amount,issued_on\n")
    assert "missing required column(s) customer_id, due_on" in str(exc.value)
    assert "unknown column(s) customer" in str(exc.value)


def test_empty_and_non_utf8_files_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("\n\n")
    with pytest.raises(ImportFailed, match="the file is empty"):
        read_table(empty)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("customer_id,name\nC-1,J\xfcrgen\n".encode("latin-1"))
    with pytest.raises(ImportFailed) as exc:
        read_table(latin)
    assert "line 2 is not valid UTF-8 (byte 0xfc); the file must be UTF-8 encoded" in str(exc.value)


def test_unchanged_and_changed_rows_against_stored_ones(tmp_path: Path) -> None:
    stored = {
        "customer_id": "C-1",
        "country": "US",
        "timezone": "America/Chicago",
        "locale": "en_US",
        "sms_opt_out": True,
        "erased_at": None,
    }
    ctx = Context(existing={"C-1": stored, "C-2": {**stored, "customer_id": "C-2"}})
    plan = _plan(
        tmp_path,
        "customers",
        "customer_id,country,timezone,locale,sms_opt_out\n"
        "C-1,US,America/Chicago,en_US,false\nC-2,US,America/Denver,en_US,true\n",
        ctx,
    )
    # C-1 says false but an opt-out is never cleared by an import, so nothing changed.
    assert plan.unchanged == 1
    assert plan.updates == [
        {
            "customer_id": "C-2",
            "country": "US",
            "timezone": "America/Denver",
            "locale": "en_US",
            "sms_opt_out": True,
        }
    ]


def test_erased_customers_are_not_re_imported(tmp_path: Path) -> None:
    stored = {"customer_id": "C-1", "erased_at": dt.datetime(2026, 5, 1, tzinfo=dt.UTC)}
    plan = _plan(
        tmp_path,
        "customers",
        "customer_id,country,timezone,locale,email\n"
        "C-1,US,America/Chicago,en_US,back@example.com\n",
        Context(existing={"C-1": stored}),
    )
    assert _errors(plan) == [
        "line 2: customer_id: customer 'C-1' was erased; remove the row "
        "(erased customers are never re-imported)"
    ]
    assert plan.updates == [] and plan.inserts == []

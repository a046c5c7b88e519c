"""The one currency table: ISO 4217 exponents (not CLDR's digits) for parsing and formatting."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dunning.money import currencies, exponent, format_money, from_minor, parse_amount, to_minor

#: ISO 4217 minor units (the ISO table), including every currency where CLDR's usual digits,
#: and so Babel's get_currency_precision, differ from ISO's.
ISO = {
    "USD": 2,
    "EUR": 2,
    "JPY": 0,
    "KRW": 0,
    "ISK": 0,
    "UGX": 0,
    "CLP": 0,
    "VND": 0,
    "BHD": 3,
    "KWD": 3,
    "JOD": 3,
    "OMR": 3,
    "TND": 3,
    "LYD": 3,
    "IQD": 3,
    "CLF": 4,
    "HUF": 2,
    "IDR": 2,
    "COP": 2,
    "MGA": 2,
    "TWD": 2,
    "AFN": 2,
    "ALL": 2,
    "IRR": 2,
    "KPW": 2,
    "LAK": 2,
    "LBP": 2,
    "MMK": 2,
    "SOS": 2,
    "SYP": 2,
    "YER": 2,
}


@pytest.mark.parametrize(("code", "digits"), sorted(ISO.items()))
def test_exponent_is_iso_4217(code: str, digits: int) -> None:
    assert exponent(code) == digits
    assert from_minor(to_minor(Decimal("12.5"), code), code) == Decimal("12.5").quantize(
        Decimal(1).scaleb(-digits)
    )


def test_huf_accepts_two_decimals_and_jpy_none() -> None:
    assert parse_amount("15000.50", "HUF") == Decimal("15000.50")
    assert to_minor(Decimal("15000.50"), "HUF") == 1500050
    with pytest.raises(ValueError, match="more than 0 decimal places allowed for JPY"):
        parse_amount("100.5", "JPY")
    with pytest.raises(ValueError, match="more than 3 decimal places allowed for KWD"):
        parse_amount("1.2345", "KWD")


def test_metals_and_test_codes_are_not_invoice_currencies() -> None:
    assert {"XAU", "XAG", "XDR", "XTS", "XXX"}.isdisjoint(currencies())
    with pytest.raises(ValueError, match="'XAU' is not an ISO 4217 currency code"):
        exponent("XAU")


def test_formatting_never_rounds_away_iso_decimals() -> None:
    # Written without decimals when whole (as Hungarians write forint), exact when not.
    assert format_money(Decimal("15000"), "HUF", "hu_HU") == "15\xa0000\xa0Ft"
    assert format_money(Decimal("15000.50"), "HUF", "hu_HU") == "15\xa0000,50\xa0Ft"
    assert format_money(Decimal("54000"), "JPY", "en_US") == "¥54,000"
    assert format_money(Decimal("1.125"), "KWD", "en_US") == "KWD1.125"
    assert format_money(Decimal("1234.5"), "EUR", "de_DE") == "1.234,50\xa0€"

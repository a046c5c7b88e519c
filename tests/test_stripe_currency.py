"""Stripe's own minor units for every currency its documentation lists as zero-decimal,
three-decimal or special (https://docs.stripe.com/currencies), in both directions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dunning.stripe_currency import LISTED, stripe_exponent, stripe_from_minor, stripe_to_minor

#: currency -> (Stripe API amount, the amount it means). Written out from Stripe's page.
CASES = {
    # zero-decimal: the API amount is the amount
    "BIF": (5000, "5000"),
    "CLP": (5000, "5000"),
    "DJF": (5000, "5000"),
    "GNF": (5000, "5000"),
    "JPY": (5000, "5000"),
    "KMF": (5000, "5000"),
    "KRW": (5000, "5000"),
    "MGA": (5000, "5000.00"),
    "PYG": (5000, "5000"),
    "RWF": (5000, "5000"),
    "VND": (5000, "5000"),
    "VUV": (5000, "5000"),
    "XAF": (5000, "5000"),
    "XOF": (5000, "5000"),
    "XPF": (5000, "5000"),
    # three-decimal, last digit 0
    "BHD": (5120, "5.120"),
    "JOD": (5120, "5.120"),
    "KWD": (5120, "5.120"),
    "OMR": (5120, "5.120"),
    "TND": (5120, "5.120"),
    # special: whole units written as two-decimal
    "ISK": (500000, "5000"),
    "UGX": (10000000, "100000"),
    # special: two-decimal in the API (whole units only for payouts)
    "HUF": (500050, "5000.50"),
    "TWD": (500050, "5000.50"),
}


def test_every_listed_currency_is_tested() -> None:
    assert set(CASES) == set(LISTED)


@pytest.mark.parametrize(("code", "case"), sorted(CASES.items()))
def test_stripe_amounts_both_ways(code: str, case: tuple[int, str]) -> None:
    minor, meaning = case
    value = stripe_from_minor(minor, code.lower())  # Stripe writes currencies in lower case
    assert value == Decimal(meaning) and str(value) == meaning
    assert stripe_to_minor(value, code) == minor


def test_two_decimal_currencies_are_the_default() -> None:
    assert stripe_exponent("usd") == 2 and stripe_from_minor(1234, "usd") == Decimal("12.34")
    assert stripe_to_minor(Decimal("12.34"), "EUR") == 1234


def test_amounts_stripe_cannot_mean_exactly_are_refused() -> None:
    with pytest.raises(ValueError, match="5.50 ISK, which has more than the 0 decimal"):
        stripe_from_minor(550, "isk")
    with pytest.raises(ValueError, match="steps of 1"):
        stripe_to_minor(Decimal("5.5"), "UGX")
    with pytest.raises(ValueError, match="steps of 0.01"):
        stripe_to_minor(Decimal("5.125"), "KWD")
    with pytest.raises(ValueError, match="not an integer"):
        stripe_from_minor("12", "usd")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an ISO 4217 currency"):
        stripe_from_minor(100, "zzz")

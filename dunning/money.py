"""Money: Decimal amounts quantised to the currency's ISO 4217 exponent, and integer minor units.

This module is the one currency table of the project: importers, sources, planning and
message formatting all take a currency's exponent from :func:`exponent`. The exponents are
ISO 4217's minor units (the maintained ``iso4217`` package ships the ISO table), not CLDR's:
CLDR, and so Babel's ``get_currency_precision``, gives the digits people usually write, which
differ for 15 currencies (HUF, IDR, COP... are 0 in CLDR and 2 in ISO 4217; IQD 0 versus 3).
An invoice of 15000.50 HUF is valid, so the table must be ISO's.

Amounts are stored as SQL Numeric and handled as Decimal. The planning core works on
integer minor units (cents, yen) so vectorised pandas arithmetic stays exact. A payment
provider's own minor units can differ from ISO's (Stripe's ISK, UGX, MGA...): convert those
with the provider's table (``dunning.stripe_currency``), never with :func:`from_minor`.
"""

from __future__ import annotations

import copy
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale
from babel.numbers import NumberPattern, format_currency, get_currency_precision
from iso4217 import Currency

#: Amounts are stored as NUMERIC(18, 4): at most 14 digits before the decimal point.
MAX_AMOUNT = Decimal(10) ** 14


@lru_cache(maxsize=1)
def _exponents() -> dict[str, int]:
    # Codes without minor units in ISO 4217 (XAU, XDR, XTS, XXX...) are metals, drawing
    # rights and test codes: not currencies an invoice is written in.
    return {c.code: int(c.exponent) for c in Currency if c.exponent is not None}


def currencies() -> frozenset[str]:
    """The ISO 4217 currency codes we accept (upper case; those with minor units)."""
    return frozenset(_exponents())


def is_currency(code: str) -> bool:
    """Whether ``code`` is a known ISO 4217 currency code (upper case)."""
    return code in _exponents()


def exponent(currency: str) -> int:
    """Number of ISO 4217 minor-unit digits of ``currency`` (USD 2, HUF 2, JPY 0, KWD 3).

    Raises ValueError for a code that is not an ISO 4217 currency with minor units.
    """
    try:
        return _exponents()[currency]
    except KeyError:
        raise ValueError(
            f"{currency!r} is not an ISO 4217 currency code (e.g. USD, EUR, JPY)"
        ) from None


def parse_amount(text: str, currency: str) -> Decimal:
    """Parse ``text`` as an amount in ``currency``.

    Raises ValueError when it is not a number, is not finite, or has more decimals than the
    currency allows (12.345 USD, 100.5 JPY).
    """
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise ValueError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    exp = exponent(currency)
    try:
        exact = value == value.quantize(Decimal(1).scaleb(-exp))
    except InvalidOperation:  # more digits than Decimal's 28-digit context holds
        raise ValueError(f"{text!r} is too large to be an amount") from None
    if not exact:
        raise ValueError(f"{text!r} has more than {exp} decimal places allowed for {currency}")
    if abs(value) >= MAX_AMOUNT:
        raise ValueError(f"{text!r} is too large: at most 14 digits before the decimal point")
    return quantize(value, currency)


def quantize(value: Decimal, currency: str) -> Decimal:
    """``value`` rounded (half-even) to the currency's exponent."""
    return value.quantize(Decimal(1).scaleb(-exponent(currency)), rounding=ROUND_HALF_EVEN)


def to_minor(value: Decimal, currency: str) -> int:
    """``value`` in integer minor units of ``currency`` (12.34 USD -> 1234)."""
    return int(quantize(value, currency).scaleb(exponent(currency)))


def from_minor(minor: int, currency: str) -> Decimal:
    """Integer minor units back to a Decimal amount."""
    return quantize(Decimal(minor).scaleb(-exponent(currency)), currency)


@lru_cache(maxsize=256)
def cached_locale(locale: str) -> Locale:
    """The Babel Locale of ``locale`` (parsed once per process)."""
    # Why cached: parsing the locale (and loading its data) was a tenth of composing a message.
    return Locale.parse(locale)


def format_money(value: Decimal, currency: str, locale: str) -> str:
    """``value`` formatted for ``locale`` (1.234,50 € for de_DE; 15 000 Ft, 15 000,50 Ft).

    Shown with the digits people usually write (CLDR's, via Babel) when that is exact, else
    with the ISO 4217 exponent: a 15000.50 HUF balance never reads as 15 001 Ft.
    """
    usual = int(get_currency_precision(currency))
    digits = usual if value == value.quantize(Decimal(1).scaleb(-usual)) else exponent(currency)
    return format_currency(
        value,
        currency,
        format=_pattern(locale, digits),
        locale=cached_locale(locale),
        currency_digits=False,
    )


@lru_cache(maxsize=512)
def _pattern(locale: str, digits: int) -> NumberPattern:
    """The locale's standard currency pattern with exactly ``digits`` fraction digits."""
    pattern = copy.copy(cached_locale(locale).currency_formats["standard"])
    pattern.frac_prec = (digits, digits)
    return pattern

"""Money: Decimal amounts quantised to the currency's exponent, and integer minor units.

Amounts are stored as SQL Numeric and handled as Decimal. The planning core works on
integer minor units (cents, yen) so vectorised pandas arithmetic stays exact.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale
from babel.numbers import format_currency, get_currency_precision, list_currencies

#: Amounts are stored as NUMERIC(18, 4): at most 14 digits before the decimal point.
MAX_AMOUNT = Decimal(10) ** 14

# ISO 4217 codes that babel knows but that are not legal tender for invoicing.
_NON_TENDER = {"XAG", "XAU", "XPD", "XPT", "XDR", "XTS", "XXX", "XBA", "XBB", "XBC", "XBD"}


@lru_cache(maxsize=1)
def currencies() -> frozenset[str]:
    """The ISO 4217 currency codes we accept."""
    return frozenset(c for c in list_currencies() if len(c) == 3 and c not in _NON_TENDER)


def is_currency(code: str) -> bool:
    """Whether ``code`` is a known ISO 4217 currency code (upper case)."""
    return code in currencies()


@lru_cache(maxsize=512)
def exponent(currency: str) -> int:
    """Number of minor-unit digits of ``currency`` (USD 2, JPY 0, BHD 3)."""
    return int(get_currency_precision(currency))


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
    """``value`` formatted for ``locale`` (1.234,50 € for de_DE)."""
    return format_currency(value, currency, locale=cached_locale(locale))

"""Cell parsers: each returns the typed value or raises ValueError naming the problem.

Messages never repeat an email address or phone number (personal data); the line and column
say where to look. Cells come from CSV (``str``) or Excel (typed values).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
from babel import Locale, UnknownLocaleError
from email_validator import EmailNotValidError, validate_email

from dunning.money import is_currency, parse_amount
from dunning.regions import parse_region

_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f", ""}
# Alpha-2 codes babel lists that are groupings or placeholders, not countries.
_NOT_COUNTRIES = {"EU", "EZ", "UN", "ZZ", "QO"}


def is_blank(cell: Any) -> bool:
    """Whether ``cell`` is empty (None or only whitespace)."""
    return cell is None or (isinstance(cell, str) and not cell.strip())


def text(cell: Any, max_length: int) -> str:
    """``cell`` as stripped text of at most ``max_length`` characters."""
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)  # Excel stores ids typed as numbers as floats
    value = str(cell).strip()
    if len(value) > max_length:
        raise ValueError(f"is {len(value)} characters long; at most {max_length} are allowed")
    return value


def boolean(cell: Any) -> bool:
    """``cell`` as a boolean: true/false, yes/no, 1/0; empty is false."""
    if isinstance(cell, bool):
        return cell
    if cell is None:
        return False
    value = str(int(cell) if isinstance(cell, float) and cell.is_integer() else cell)
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean (use true/false, yes/no or 1/0)")


def date(cell: Any) -> dt.date:
    """``cell`` as a calendar date (YYYY-MM-DD, or an Excel date cell)."""
    if isinstance(cell, dt.datetime):
        if cell.time() != dt.time(0):
            raise ValueError(f"{cell.isoformat()} has a time of day; a date is expected")
        return cell.date()
    if isinstance(cell, dt.date):
        return cell
    value = str(cell).strip()
    try:
        if len(value) != 10:
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (expected YYYY-MM-DD)") from None


def instant(cell: Any) -> dt.datetime:
    """``cell`` as a UTC instant: a date is midnight UTC, a date-time without offset is UTC."""
    if isinstance(cell, dt.datetime):
        parsed = cell
    elif isinstance(cell, dt.date):
        parsed = dt.datetime.combine(cell, dt.time(0))
    else:
        value = str(cell).strip()
        try:
            parsed = (
                dt.datetime.combine(date(value), dt.time(0))
                if len(value) == 10
                else dt.datetime.fromisoformat(value)
            )
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date or date-time (expected YYYY-MM-DD or ISO 8601 "
                "YYYY-MM-DDTHH:MM:SS with an optional offset such as +02:00 or Z)"
            ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    names = Locale("en").territories
    codes = (str(c) for c in names)
    return frozenset(c for c in codes if len(c) == 2 and c.isalpha() and c not in _NOT_COUNTRIES)


def country(cell: Any) -> str:
    """``cell`` as an upper-case ISO 3166-1 alpha-2 country code."""
    value = str(cell).strip().upper()
    if value not in _countries():
        raise ValueError(f"{value!r} is not an ISO 3166 alpha-2 country code (e.g. US, DE, JP)")
    return value


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def timezone(cell: Any) -> str:
    """``cell`` as an IANA time zone name."""
    value = str(cell).strip()
    if value not in _zones():
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)")
    ZoneInfo(value)  # the name is listed, so this loads; it also warms the cache for planning
    return value


@lru_cache(maxsize=1024)
def locale(cell: Any) -> str:
    """``cell`` as a babel locale identifier such as en_US or de_DE."""
    value = str(cell).strip().replace("-", "_")
    try:
        return str(Locale.parse(value))
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError(f"{value!r} is not a known locale (e.g. en_US, de_DE, ja_JP)") from None


def region(cell: Any, country: str) -> str:
    """``cell`` (``AU-NSW`` or ``NSW``) as the ISO 3166-2 code of a subdivision of ``country``
    that the ``holidays`` package knows (its public holidays then apply)."""
    return parse_region(str(cell), country)


def email(cell: Any) -> str:
    """``cell`` as a normalised email address (syntax only; the domain is not looked up)."""
    value = str(cell).strip()
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None


#: Number types that never receive SMS. FIXED_LINE_OR_MOBILE (all US and Canadian numbers,
#: phonenumbers cannot tell them apart) stays an SMS destination; so do VOIP and UNKNOWN.
_NOT_MOBILE = {
    phonenumbers.PhoneNumberType.FIXED_LINE: "a fixed line",
    phonenumbers.PhoneNumberType.TOLL_FREE: "a toll-free number",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    phonenumbers.PhoneNumberType.SHARED_COST: "a shared-cost number",
    phonenumbers.PhoneNumberType.UAN: "a universal access number",
    phonenumbers.PhoneNumberType.VOICEMAIL: "a voicemail number",
    phonenumbers.PhoneNumberType.PAGER: "a pager number",
}


def not_mobile_reason(cell: Any, region: str | None) -> str | None:
    """Why the phone ``cell`` (already valid, see :func:`phone`) cannot receive SMS, or None.

    An extension (``+49 30 1234567 ext. 12``) means a switchboard; a number phonenumbers types
    as fixed-line (or toll-free, premium-rate...) cannot receive SMS either.
    """
    try:
        number = phonenumbers.parse(str(cell).strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if number.extension:
        return "has an extension, so it is no SMS destination"
    kind = _NOT_MOBILE.get(phonenumbers.number_type(number))
    return f"is {kind}, so it is no SMS destination" if kind else None


def phone(cell: Any, region: str | None) -> str:
    """``cell`` as an E.164 phone number, reading national numbers in ``region``."""
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        # A number cell has lost its '+' (and a national number its leading 0): digits that
        # start with the country's calling code were an international number.
        digits = str(int(cell))
        code = str(phonenumbers.country_code_for_region(region)) if region else ""
        cell = "+" + digits if code and code != "0" and digits.startswith(code) else digits
    value = str(cell).strip()
    hint = f" for country {region}" if region else ""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"not a phone number{hint}; use E.164 such as +14155550123") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"not a valid phone number{hint}; use E.164 such as +14155550123")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def currency(cell: Any) -> str:
    """``cell`` as an ISO 4217 currency code."""
    value = str(cell).strip().upper()
    if not is_currency(value):
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. USD, EUR, JPY)")
    return value


def amount(cell: Any, currency_code: str, *, allow_zero: bool) -> Decimal:
    """``cell`` as a non-negative Decimal with no more decimals than ``currency_code`` has."""
    if isinstance(cell, float):
        cell = repr(cell)  # shortest repr of an Excel number: 12.5, not 12.4999999
    value = parse_amount(str(cell), currency_code)
    if value < 0:
        raise ValueError(f"{value} is negative; amounts must be zero or more")
    if value == 0 and not allow_zero:
        raise ValueError("is zero; a payment must be greater than zero")
    return value


def choice(cell: Any, allowed: tuple[str, ...]) -> str:
    """``cell`` lower-cased, when it is one of ``allowed``."""
    value = str(cell).strip().lower()
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {'|'.join(allowed)}")
    return value


def url(cell: Any) -> str:
    """``cell`` as an absolute http(s) URL."""
    value = text(cell, 2048)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("is not an absolute http(s) URL (e.g. https://pay.example.com/inv/1)")
    return value

"""Stripe's own minor units: amounts in Stripe's API to and from our ISO 4217 Decimals.

Stripe sends and expects every amount as an integer in "the currency's smallest unit", but its
smallest unit is not always ISO 4217's (source: Stripe's "Supported currencies" page,
https://docs.stripe.com/currencies, sections "Zero-decimal currencies", "Three-decimal
currencies" and "Special cases"):

- Currencies are two-decimal unless Stripe lists them otherwise.
- Zero-decimal: BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF (an amount of 500
  JPY is ``500``). MGA is two-decimal in ISO 4217 but zero-decimal at Stripe.
- Three-decimal: BHD JOD KWD OMR TND; the last digit must be 0 (5.120 KWD is ``5120``).
- Special cases kept two-decimal in the API for backwards compatibility although the currency
  has no fractions: ISK and UGX (5 ISK is ``500``; the amount must be divisible by 100). Stripe
  also lists UGX among its zero-decimal currencies; its API amounts are nonetheless two-decimal.
- HUF and TWD: two-decimal in the API for charges and refunds (Stripe only requires whole
  units for payouts, which we never make).

Every amount from Stripe (payments, refunds, invoices) goes through :func:`stripe_from_minor`;
every amount we send to Stripe through :func:`stripe_to_minor`.
"""

from __future__ import annotations

from decimal import Decimal

from dunning.money import exponent, is_currency

ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())
#: Two-decimal in Stripe's API but charged in whole units only (amount divisible by 100).
WHOLE_UNITS_AS_TWO_DECIMAL = frozenset({"ISK", "UGX"})
#: Two-decimal in the API; whole units only for payouts.
TWO_DECIMAL_WHOLE_PAYOUTS = frozenset({"HUF", "TWD"})
#: Every currency Stripe's page names as zero-decimal, three-decimal or special.
LISTED = ZERO_DECIMAL | THREE_DECIMAL | WHOLE_UNITS_AS_TWO_DECIMAL | TWO_DECIMAL_WHOLE_PAYOUTS


def _code(currency: str) -> str:
    code = str(currency).strip().upper()  # Stripe writes currencies in lower case
    if not is_currency(code):
        raise ValueError(f"Stripe currency {currency!r} is not an ISO 4217 currency code")
    return code


def stripe_exponent(currency: str) -> int:
    """Digits of Stripe's API minor unit for ``currency`` (jpy 0, usd 2, isk 2, kwd 3).

    Raises ValueError for a code that is not an ISO 4217 currency.
    """
    code = _code(currency)
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def stripe_from_minor(minor: int, currency: str) -> Decimal:
    """A Stripe API amount (integer, Stripe's minor units) as a Decimal in ``currency``.

    The result is quantised to the currency's ISO 4217 exponent: ``stripe_from_minor(500,
    "isk")`` is ``Decimal("5")``, ``(10000000, "ugx")`` is 100000, ``(2000, "jpy")`` 2000,
    ``(500000, "huf")`` 5000.00, ``(5120, "kwd")`` 5.120. Raises ValueError when ``minor`` is
    not an integer, or when the amount has a fraction ISO 4217 does not allow (550 ISK, i.e.
    5.50 ISK, from a charge made before Stripe made ISK whole-unit).
    """
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise ValueError(f"Stripe amount {minor!r} is not an integer number of minor units")
    code = _code(currency)
    value = Decimal(minor).scaleb(-stripe_exponent(code))
    iso = exponent(code)
    exact = value.quantize(Decimal(1).scaleb(-iso))
    if exact != value:
        raise ValueError(
            f"Stripe amount {minor} {code} is {value} {code}, which has more than the {iso} "
            f"decimal place(s) ISO 4217 allows for {code}; record it by hand with "
            "`dunning import payments`"
        )
    return exact


def stripe_to_minor(value: Decimal, currency: str) -> int:
    """``value`` in ``currency`` as the integer amount Stripe's API expects.

    ``stripe_to_minor(Decimal("5"), "isk")`` is 500, ``(Decimal("12.34"), "usd")`` 1234,
    ``(Decimal("5.12"), "kwd")`` 5120. Raises ValueError when Stripe cannot charge the amount
    exactly: fractions of ISK or UGX, a three-decimal amount whose last digit is not 0, or
    more decimals than the currency has.
    """
    code = _code(currency)
    digits = stripe_exponent(code)
    if code in WHOLE_UNITS_AS_TWO_DECIMAL or code in ZERO_DECIMAL:
        step = Decimal(1)
    elif code in THREE_DECIMAL:
        step = Decimal("0.01")  # the last of the three digits must be 0
    else:
        step = Decimal(1).scaleb(-min(digits, exponent(code)))
    if Decimal(value) % step != 0:
        raise ValueError(
            f"{value} {code} cannot be sent to Stripe exactly: Stripe takes {code} amounts in "
            f"steps of {step}; round the amount first"
        )
    return int(Decimal(value).scaleb(digits))

"""What the email layout shows besides the stage's words: the invoice summary (one invoice or
several, with one total per currency) and the brand colours, formatted in the message's one
resolved locale."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel.dates import format_date

from dunning.core.messages import ReminderData
from dunning.money import cached_locale, format_money


def safe_link(link: str | None) -> str | None:
    """``link`` when it is a web link (http/https), else None: only those become an href."""
    # Anything else (javascript:, data:) could run in a mail client; it is dropped.
    if link and link.lower().startswith(("https://", "http://")):
        return link
    return None


def format_day(day: date, locale: str, form: str = "long") -> str:
    """``day`` formatted by Babel in ``locale`` (form "long": 2 March 2026, "short": 02/03/2026)."""
    return format_date(day, format=form, locale=cached_locale(locale))


def summary_row(r: ReminderData, due_date: str, balance_due: str, amount: str) -> dict[str, Any]:
    """The summary row of reminder ``r`` from its already formatted date and amounts.

    Keys: invoice_number, currency, due_date, balance_due, amount (formatted strings),
    partly_paid (bool), days_overdue (int, 0 before the due date), payment_link (web link or
    None).
    """
    return {
        "invoice_number": r.invoice_number,
        "currency": r.currency,
        "due_date": due_date,
        "balance_due": balance_due,
        "amount": amount,
        "partly_paid": r.balance_due < r.amount,
        "days_overdue": max(r.days_overdue, 0),
        "payment_link": safe_link(r.payment_link),
    }


def invoice_items(reminders: Sequence[ReminderData], locale: str) -> list[dict[str, Any]]:
    """One summary row (see ``summary_row``) per invoice of a message, amounts and dates
    formatted in ``locale``."""
    return [
        summary_row(
            r,
            format_day(r.due_on, locale),
            format_money(r.balance_due, r.currency, locale),
            format_money(r.amount, r.currency, locale),
        )
        for r in reminders
    ]


def currency_totals(reminders: Sequence[ReminderData], locale: str) -> list[str]:
    """The balance due per currency, formatted in ``locale``, in first-seen currency order.

    Amounts in different currencies are never added together.
    """
    sums: dict[str, Decimal] = {}
    for r in reminders:
        sums[r.currency] = sums.get(r.currency, Decimal(0)) + r.balance_due
    return [format_money(total, currency, locale) for currency, total in sums.items()]


def _luminance(hex_color: str) -> float:
    """Relative luminance of ``#rrggbb``/``#rgb`` (WCAG 2.x definition)."""
    digits = hex_color.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    channels = []
    for i in (0, 2, 4):
        c = int(digits[i : i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
    red, green, blue = channels
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two hex colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@lru_cache(maxsize=16)
def brand_colors(brand: str) -> dict[str, str]:
    """The layout's colours for brand colour ``brand``: the brand itself, the pay button's text
    colour (white or near-black, whichever reads better on the brand) and a link colour that
    stays readable on white (the brand when its contrast is at least 4.5:1, WCAG AA)."""
    white, ink = "#ffffff", "#111827"
    return {
        "brand_color": brand,
        "button_text_color": white if contrast(brand, white) >= contrast(brand, ink) else ink,
        "link_color": brand if contrast(brand, white) >= 4.5 else "#1d4ed8",
    }

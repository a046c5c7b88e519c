"""Text written for speech: which Twilio voice speaks a language, and amounts, dates and
invoice numbers the way a listener understands them.

Twilio's ``<Say>`` takes a ``language`` (BCP 47 code such as ``de-DE``) and a ``voice``; the
table below pairs each language with an Amazon Polly voice that speaks it (Twilio docs,
"TwiML Voice: <Say> — Available voices and languages"). A language without an entry falls
back to English, and the caller is told so (``Voice.fallback``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from babel.dates import format_date
from babel.numbers import format_decimal, get_currency_name
from num2words import num2words

from dunning.money import cached_locale, exponent

#: Twilio <Say> language code -> Amazon Polly voice that speaks it.
VOICES: dict[str, str] = {
    "en-US": "Polly.Joanna",
    "en-GB": "Polly.Amy",
    "en-AU": "Polly.Nicole",
    "en-IN": "Polly.Aditi",
    "de-DE": "Polly.Vicki",
    "fr-FR": "Polly.Lea",
    "fr-CA": "Polly.Chantal",
    "es-ES": "Polly.Lucia",
    "es-MX": "Polly.Mia",
    "es-US": "Polly.Lupe",
    "it-IT": "Polly.Bianca",
    "ja-JP": "Polly.Mizuki",
    "nl-NL": "Polly.Lotte",
    "pt-BR": "Polly.Camila",
    "pt-PT": "Polly.Ines",
}
#: The language code used for a language when the customer's region has no voice of its own.
DEFAULT_REGION: dict[str, str] = {
    "en": "en-US",
    "de": "de-DE",
    "fr": "fr-FR",
    "es": "es-ES",
    "it": "it-IT",
    "ja": "ja-JP",
    "nl": "nl-NL",
    "pt": "pt-BR",
}
FALLBACK = "en-US"


@dataclass(frozen=True)
class Voice:
    """The ``<Say>`` attributes for one call and whether the customer's language was missing."""

    language: str  # Twilio language code, e.g. de-DE
    voice: str  # e.g. Polly.Vicki
    fallback: str | None = None  # why English is spoken instead of the customer's language


def choose_voice(locale: str, template_language: str) -> Voice:
    """The voice for a customer with ``locale`` (e.g. ``de_AT``) whose voice template was found
    in ``template_language`` (``de``, or ``en`` after a fallback).

    The customer's region is kept when Twilio has a voice for it (fr_CA -> fr-CA), else the
    language's default region (de_AT -> de-DE). English is used when the language has no
    voice template or no Twilio voice, and ``fallback`` says why.
    """
    parts = locale.replace("-", "_").split("_")
    wanted = parts[0].lower()
    region = f"{wanted}-{parts[1].upper()}" if len(parts) > 1 and parts[1] else ""
    lang = template_language.split("_")[0].lower()
    code = (
        region
        if region in VOICES and region.startswith(f"{lang}-")
        else (DEFAULT_REGION.get(lang, ""))
    )
    reason = None
    if lang != wanted:
        reason = f"no voice template in {wanted!r}: the call speaks English"
    if not code:
        code = FALLBACK
        reason = f"Twilio has no voice for {lang!r}: the call speaks English"
    return Voice(code, VOICES[code], reason)


def spoken_invoice_number(number: str) -> str:
    """``number`` as a listener can note it down: letters spelled, digits in groups of three
    (never a lone digit at the end: four digits are two pairs), groups separated by a pause
    (``INV-000123`` -> ``I N V, 0 0 0, 1 2 3``; ``INV-0001`` -> ``I N V, 0 0, 0 1``)."""
    groups: list[str] = []
    for part in re.findall(r"[^\W\d_]+|\d+", number):
        if part.isdigit():
            start = 0
            for size in _group_sizes(len(part)):
                groups.append(" ".join(part[start : start + size]))
                start += size
        else:
            groups.append(" ".join(part.upper()))
    return ", ".join(groups) or number


def _group_sizes(n: int) -> list[int]:
    sizes = [3] * (n // 3)
    if n % 3 == 1 and sizes:
        sizes[-1] = 2
        sizes.append(2)
    elif n % 3:
        sizes.append(n % 3)
    return sizes


def spoken_date(day: dt.date, locale: str) -> str:
    """``day`` written out in ``locale`` with the weekday (``Tuesday, November 24, 2026``),
    which every text-to-speech voice reads naturally."""
    return format_date(day, format="full", locale=cached_locale(locale))


def spoken_amount(amount: Decimal, currency: str, locale: str) -> str:
    """``amount`` of ``currency`` in words of ``locale``'s language (``twelve euro, fifty
    cents``), so the voice does not read separators and symbols; digits with the currency's
    name where num2words has no words for the pair."""
    lang = locale.split("_")[0]
    whole = amount == amount.to_integral_value()
    if whole:
        # "ninety-nine euros", not "ninety-nine euros and zero cents".
        words = _num2words_number(int(amount), lang)
        if words:
            return (
                f"{words} {get_currency_name(currency, count=amount, locale=cached_locale(locale))}"
            )
    words = None if whole else _num2words_currency(str(amount), currency, lang)
    if words:
        return words
    number = format_decimal(
        amount,
        locale=cached_locale(locale),
        format=f"#,##0.{'0' * exponent(currency)}" if exponent(currency) else "#,##0",
    )
    name = get_currency_name(currency, count=amount, locale=cached_locale(locale))
    return f"{number} {name}"


@lru_cache(maxsize=4096)
def _num2words_number(number: int, lang: str) -> str | None:
    try:
        return str(num2words(number, lang=lang))
    except (NotImplementedError, KeyError, ValueError, TypeError, AttributeError):
        return None


@lru_cache(maxsize=4096)
def _num2words_currency(amount: str, currency: str, lang: str) -> str | None:
    if exponent(currency) != 2:
        # num2words always speaks cents: right only for currencies with two decimals.
        return None
    try:
        words = num2words(Decimal(amount), lang=lang, to="currency", currency=currency)
    except (NotImplementedError, KeyError, ValueError, TypeError, AttributeError):
        return None
    return str(words)

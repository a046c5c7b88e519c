"""One resolved locale per message: the template language and the Babel locale that formats its
dates and amounts, chosen together so a message never mixes languages.

A customer's locale (``fr_CA``) is matched against the template languages that exist, best
first: ``fr_CA``, then ``fr``, then the fallback ``en``. When a template of the customer's own
language is found, dates and amounts use the customer's full locale (Canadian French formats
for ``fr_CA``). When only the fallback exists (a ``pl_PL`` customer and no Polish templates),
the words are English, so dates and amounts are formatted in English too: "March 2, 2026" and
"PLN 1,234.50", never "2 marca 2026" inside an English sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from babel import Locale, UnknownLocaleError

FALLBACK_LANGUAGE = "en"


def locale_candidates(locale: str) -> list[str]:
    """Template languages to try for ``locale``, best first (de_AT -> de_AT, de, en)."""
    normalized = locale.replace("-", "_").strip()
    parts = normalized.split("_")
    candidates = []
    if len(parts) > 1 and parts[0]:
        candidates.append(f"{parts[0].lower()}_{parts[1].upper()}")
    if parts[0]:
        candidates.append(parts[0].lower())
    candidates.append(FALLBACK_LANGUAGE)
    return list(dict.fromkeys(candidates))


@lru_cache(maxsize=256)
def babel_locale(locale: str) -> str:
    """The locale Babel formats with: ``locale`` if Babel knows it, else its language, else en."""
    # Cached: Babel's locale data is fixed for the process and this ran once per message.
    for candidate in locale_candidates(locale):
        try:
            Locale.parse(candidate)
        except (UnknownLocaleError, ValueError):
            continue
        return candidate
    return FALLBACK_LANGUAGE


@dataclass(frozen=True)
class ResolvedLocale:
    """The language of a message's words (``lang``, a template language such as ``fr``) and
    the Babel locale of its dates and amounts (``formats``, such as ``fr_CA``)."""

    lang: str
    formats: str


def resolve_locale(locale: str, has_language: Callable[[str], bool]) -> ResolvedLocale | None:
    """The resolved locale of a customer with ``locale``, or None when no candidate exists.

    ``has_language(lang)`` tells whether templates exist in ``lang``. The first candidate of
    ``locale_candidates(locale)`` that exists gives the words; the dates and amounts follow
    the same language: the customer's full locale when the words are in the customer's own
    language, else the language the words fell back to.
    """
    own = locale.replace("-", "_").strip().split("_")[0].lower()
    for lang in locale_candidates(locale):
        if not has_language(lang):
            continue
        if lang.split("_")[0] == own:
            return ResolvedLocale(lang, babel_locale(locale))
        return ResolvedLocale(lang, babel_locale(lang))
    return None

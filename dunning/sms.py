"""SMS text: GSM-7 transliteration and segment counting, per 3GPP TS 23.038 and TS 23.040.

Rules and sources:

- The GSM 7-bit default alphabet (3GPP TS 23.038 section 6.2.1) has 128 characters of one
  septet each; its extension table (6.2.1.1: ``^ { } \\ [ ~ ] | €`` and form feed) is reached
  through the escape code, so each of those costs two septets.
- A single message holds 140 octets: 160 septets, or 70 UCS-2 code units. A concatenated
  message spends 6 octets of each part on the user-data header (TS 23.040 9.2.3.24.1), leaving
  153 septets or 67 UCS-2 units per segment.
- An escape sequence is never split across two segments, nor is a UTF-16 surrogate pair
  (Twilio, "What the heck is a segment?"; the handset could not reassemble half a character),
  so a segment may end one unit short: ``'a'*152 + '€' + 'a'*152`` is 3 segments, not 2.
- One character outside GSM-7 makes the whole message UCS-2. Characters with a faithful GSM-7
  form (typographic quotes and spaces, dashes, the ellipsis, full-width ASCII forms and the
  full-width yen/pound signs) are replaced first, as Twilio's Smart Encoding does (its list of
  replaced characters, twilio.com/docs/messaging/services/smart-encoding-char-list). Letters
  are never stripped of their accents: "dû" is not "du", so such a text stays UCS-2.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# GSM 03.38 basic character set (the 128 code points of the default alphabet).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters reached through the escape code: each costs two septets.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
_GSM7 = GSM7_BASIC | GSM7_EXTENSION

GSM7_SINGLE, GSM7_MULTI = 160, 153  # septets in a single / a concatenated segment
UCS2_SINGLE, UCS2_MULTI = 70, 67  # UTF-16 code units in a single / a concatenated segment


@dataclass(frozen=True)
class SegmentCount:
    """How an SMS body is encoded and how many segments it is billed as."""

    encoding: str  # "GSM-7" | "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM-7 default alphabet or its extension."""
    return set(text) <= _GSM7


def count_segments(text: str) -> SegmentCount:
    """The encoding and segment count of ``text`` as sent (no transliteration here).

    GSM-7 when every character is in the default alphabet or its extension table (extension
    characters cost two septets), else UCS-2 (characters outside the BMP, such as emoji, take
    two UTF-16 code units). One segment holds 160 septets / 70 units; a longer text is split
    into segments of 153 septets / 67 units, never splitting an escape sequence or a surrogate
    pair (see the module docstring for the sources).
    """
    if is_gsm7(text):
        costs = [2 if c in GSM7_EXTENSION else 1 for c in text]
        single, multi, encoding = GSM7_SINGLE, GSM7_MULTI, "GSM-7"
    else:
        costs = [2 if ord(c) > 0xFFFF else 1 for c in text]  # astral: a surrogate pair
        single, multi, encoding = UCS2_SINGLE, UCS2_MULTI, "UCS-2"
    units = sum(costs)
    if units <= single:
        return SegmentCount(encoding, units, 1 if units else 0)
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:  # this character does not fit whole: it opens the next segment
            segments, used = segments + 1, 0
        used += cost
    return SegmentCount(encoding, units, segments)


def _replacements() -> dict[int, str]:
    """Code point -> GSM-7 text, for characters whose GSM-7 form says the same thing."""
    table: dict[str, str] = {
        # Spaces: no-break, narrow no-break (Babel puts them into amounts: 1 000,00 €), thin,
        # figure, en/em and ideographic spaces.
        **dict.fromkeys(
            (
                "\u00a0",
                "\u202f",
                "\u2000",
                "\u2001",
                "\u2002",
                "\u2003",
                "\u2004",
                "\u2005",
                "\u2006",
                "\u2007",
                "\u2008",
                "\u2009",
                "\u200a",
                "\u205f",
                "\u3000",
            ),
            " ",
        ),
        # Quotes and apostrophes.
        **dict.fromkeys(("\u2018", "\u2019", "\u201a", "\u201b", "\u2032", "\u02bc"), "'"),
        **dict.fromkeys(
            ("\u201c", "\u201d", "\u201e", "\u201f", "\u2033", "\u00ab", "\u00bb"), '"'
        ),
        **dict.fromkeys(("\u2039",), "<"),
        **dict.fromkeys(("\u203a",), ">"),
        # Hyphens and dashes, the minus sign.
        **dict.fromkeys(
            ("\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212"), "-"
        ),
        "\u2026": "...",
        "\u2022": "-",
        # Zero-width characters carry nothing visible.
        **dict.fromkeys(("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"), ""),
        # Full-width currency signs (Babel's ja_JP yen is U+FFE5): the same sign.
        "\uffe5": "¥",
        "\uffe1": "£",
    }
    # Full-width ASCII forms U+FF01..U+FF5E are the ASCII characters U+0021..U+007E.
    table.update({chr(0xFF01 + i): chr(0x21 + i) for i in range(0x5E)})
    return {ord(k): v for k, v in table.items()}


_GSM7_FORMS = _replacements()


def plain_text(text: str) -> str:
    """``text`` in GSM-7 when a faithful GSM-7 form of it exists, else ``text`` unchanged (NFC).

    The text is first put in Unicode normalization form NFC (an "é" written as "e" plus a
    combining accent is the GSM-7 letter é). Then typographic spaces, quotes, dashes, the
    ellipsis, full-width ASCII and full-width currency signs are replaced by their GSM-7
    forms. When the result is still not GSM-7 (Japanese, or a letter such as û or ç that
    GSM-7 lacks), the message goes as UCS-2 anyway and keeps its original typography; so it
    does when the GSM-7 form would take more segments (a text of ellipses, each three dots).
    """
    normal = unicodedata.normalize("NFC", text)
    replaced = normal.translate(_GSM7_FORMS)
    if replaced == normal or not is_gsm7(replaced):
        return normal
    if count_segments(replaced).segments > count_segments(normal).segments:
        return normal
    return replaced

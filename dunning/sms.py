"""SMS segment counting: GSM-7 (basic + extension table) or UCS-2, per 3GPP TS 23.038."""

from __future__ import annotations

from dataclasses import dataclass

# GSM 03.38 basic character set (the 128 code points of the default alphabet).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters reached through the escape code: each costs two septets.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SegmentCount:
    """How an SMS body is encoded and how many segments it is billed as."""

    encoding: str  # "GSM-7" | "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def count_segments(text: str) -> SegmentCount:
    """The encoding and segment count of ``text``: GSM-7 160/153 septets, UCS-2 70/67 units."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
        single, multi = 160, 153
        encoding = "GSM-7"
    else:
        # Characters outside the BMP (emoji) take two UTF-16 code units.
        units = len(text.encode("utf-16-le")) // 2
        single, multi = 70, 67
        encoding = "UCS-2"
    if units <= single:
        segments = 1 if units else 0
    else:
        segments = -(-units // multi)
    return SegmentCount(encoding, units, segments)


# Typographic characters that push a message into UCS-2 (a third of the room) for no reason;
# Babel puts narrow no-break spaces into amounts (1 000,00 €).
_PLAIN = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2019": "'",
                        "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                        "\u2014": "-", "\u2026": "..."})


def plain_text(text: str) -> str:
    """``text`` with typographic spaces, quotes and dashes replaced by GSM-7 equivalents."""
    return text.translate(_PLAIN)

"""SMS segment counting (GSM-7 basic + extension, UCS-2) and GSM-friendly text."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dunning.sms import GSM7_BASIC, GSM7_EXTENSION, count_segments, is_gsm7, plain_text


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension table: two septets each
        ("€" * 81, "GSM-7", 162, 2),
        ("[]{}^~|\\", "GSM-7", 16, 1),
        ("Grüße àéù ÄÖÑÜ £¥§¿¡", "GSM-7", 20, 1),
        ("ç" * 70, "UCS-2", 70, 1),  # lower-case ç is not in GSM-7 (only Ç)
        ("ç" * 71, "UCS-2", 71, 2),
        ("ü" * 100 + "ł", "UCS-2", 101, 2),
        ("ł" * 134, "UCS-2", 134, 2),
        ("ł" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),  # astral characters take two UTF-16 units
        ("😀" * 36, "UCS-2", 72, 2),
    ],
)
def test_count_segments(text: str, encoding: str, units: int, segments: int) -> None:
    count = count_segments(text)
    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)


def test_plain_text_keeps_gsm7() -> None:
    fancy = "1\u202f234,50\xa0€ – l\u2019avis \u201cok\u201d…"
    plain = plain_text(fancy)
    assert plain == '1 234,50 € - l\'avis "ok"...'
    assert count_segments(fancy).encoding == "UCS-2"
    assert count_segments(plain).encoding == "GSM-7"


@pytest.mark.parametrize(
    ("text", "units", "segments"),
    [
        # An escape sequence never straddles two segments (3GPP TS 23.038; Twilio's segment
        # rules): the first segment ends one septet short and the text needs a third.
        ("a" * 152 + "€" + "a" * 152, 306, 3),
        ("a" * 151 + "€" + "a" * 153, 306, 2),  # the pair fits at the end of segment one
        ("a" * 152 + "€" * 77, 306, 3),
        ("a" * 153 + "€" * 76 + "a", 306, 2),
        # Likewise a surrogate pair in UCS-2 (67 units per segment).
        ("ł" * 66 + "😀" + "ł" * 66, 134, 3),
        ("ł" * 65 + "😀" + "ł" * 67, 134, 2),
    ],
)
def test_a_character_is_never_split_across_segments(text: str, units: int, segments: int) -> None:
    count = count_segments(text)
    assert (count.units, count.segments) == (units, segments)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\uffe5540,000", "¥540,000"),  # Babel's ja_JP yen is full-width; GSM-7 has ¥
        ("\uff2a\uff30\uff39\u3000\uff11\uff12", "JPY 12"),  # full-width ASCII and space
        ("\u00ab\u00a0ok\u00a0\u00bb \u2018a\u2019 \u201eb\u201c", '" ok " \'a\' "b"'),
        ("a\u2011b \u2212 1\u2009000", "a-b - 1 000"),
        ("e\u0301te\u0301", "été"),  # NFD accents become the GSM-7 letter é
    ],
)
def test_faithful_gsm7_forms_replace_their_characters(text: str, expected: str) -> None:
    assert plain_text(text) == expected
    assert count_segments(plain_text(text)).encoding == "GSM-7"


def test_letters_gsm7_lacks_keep_their_accent_and_go_ucs2() -> None:
    # "dû" is not "du": no faithful GSM-7 form, so the text stays as written, typography too.
    text = "Montant d\u00fb\u202f: 1\u202f234,50\u00a0\u20ac \u2013 merci\u2026"
    assert plain_text(text) == text
    assert count_segments(plain_text(text)).encoding == "UCS-2"
    japanese = "請求書（\uffe5540,000）"
    assert plain_text(japanese) == japanese  # UCS-2 anyway: keep the full-width forms


def test_replacing_never_costs_more_segments() -> None:
    # 70 ellipses: one UCS-2 segment; as "..." 210 septets would be two GSM-7 segments.
    text = "\u2026" * 70
    assert plain_text(text) == text


# --- Properties (hypothesis) ---------------------------------------------------------------

_GSM = sorted(GSM7_BASIC | GSM7_EXTENSION)
_REPLACEABLE = [
    "\u00a0",
    "\u202f",
    "\u2019",
    "\u201c",
    "\u201d",
    "\u2013",
    "\u2014",
    "\u2026",
    "\uffe5",
    "\uff21",
    "\u3000",
]


def _septet_segments(text: str) -> int:
    """Reference: encode to septets (escape + code for extension characters), split into
    153-septet segments, moving a trailing escape to the next segment."""
    septets: list[str] = []
    for c in text:
        septets.extend(("ESC", c) if c in GSM7_EXTENSION else (c,))
    if len(septets) <= 160:
        return 1 if septets else 0
    segments, i = 0, 0
    while i < len(septets):
        end = min(i + 153, len(septets))
        if septets[end - 1] == "ESC" and end < len(septets):
            end -= 1
        segments, i = segments + 1, end
    return segments


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_GSM), max_size=700).map("".join))
def test_gsm7_segments_match_a_septet_level_reference(text: str) -> None:
    count = count_segments(text)
    assert count.encoding == "GSM-7"
    assert count.units == sum(2 if c in GSM7_EXTENSION else 1 for c in text)
    assert count.segments == _septet_segments(text)


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(_GSM + _REPLACEABLE + ["ç", "û", "請", "😀"]), max_size=400))
def test_plain_text_is_faithful_idempotent_and_never_longer_in_segments(text: str) -> None:
    plain = plain_text(text)
    assert plain_text(plain) == plain
    normal = unicodedata.normalize("NFC", text)
    assert count_segments(plain).segments <= count_segments(normal).segments
    if plain != normal:
        assert is_gsm7(plain)
    if all(c in _GSM or c in _REPLACEABLE for c in text) and "\u2026" not in text:
        assert is_gsm7(plain)  # everything replaceable was replaced

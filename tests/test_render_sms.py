"""SMS segment counting (GSM-7 basic + extension, UCS-2) and GSM-friendly text."""

from __future__ import annotations

import pytest

from dunning.sms import count_segments, plain_text


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
    assert plain == "1 234,50 € - l'avis \"ok\"..."
    assert count_segments(fancy).encoding == "UCS-2"
    assert count_segments(plain).encoding == "GSM-7"

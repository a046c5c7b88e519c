"""HTML email layout: invoice summary, the pay button right after it, a real link, logo and
brand colour from the settings, a table for several invoices, and a plain-text part that says
the same."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from pydantic import SecretStr, ValidationError

from dunning.config import reload_settings
from dunning.config.channels import ChannelSettings
from dunning.core.messages import ReminderData
from dunning.render import compose
from dunning.summary import brand_colors, contrast
from tests.render_support import PAY_LINK as LINK
from tests.render_support import reminder as sample


def reminder(**changes: object) -> ReminderData:
    # Partly paid: 200.00 of 1,234.50 still due.
    return sample(**{"balance_due": Decimal("200.00"), **changes})


def settings(**changes: object) -> ChannelSettings:
    return ChannelSettings(unsubscribe_secret=SecretStr("s3cret"), **changes)  # type: ignore[arg-type]


class _Page(HTMLParser):
    """The visible text in document order, every <a href>, every <img src>."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.images: list[str] = []
        self._href: str | None = None
        self._anchor = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "a":
            self._href, self._anchor = attributes.get("href") or "", ""
        if tag == "img":
            self.images.append(attributes.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, self._anchor.strip()))
            self._href = None

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())
        if self._href is not None:
            self._anchor += data


def page(html: str | None) -> _Page:
    assert html is not None
    parsed = _Page()
    parsed.feed(html)
    return parsed


def _position(items: list[str], needle: str) -> int:
    return next(i for i, item in enumerate(items) if needle in item)


def test_summary_then_pay_button_then_signature() -> None:
    msg = compose(reminder(), settings())
    html = page(msg.html)
    # The summary block: number, due date, days overdue, balance (with the original amount).
    for label, value in (
        ("Invoice", "INV-2026-0007"),
        ("Due date", "March 2, 2026"),
        ("Overdue", "4 days"),
        ("Balance due", "€200.00"),
    ):
        assert html.text[_position(html.text, label) + 1] == value
    assert "(of the original €1,234.50)" in html.text
    # "Pay now" is a real link to the payment URL, right after the summary and before the
    # signature; the URL itself is a link too.
    assert (LINK, "Pay now") in html.links and (LINK, LINK) in html.links
    button = html.text.index("Pay now")
    assert _position(html.text, "Balance due") < button < _position(html.text, "Kind regards")
    assert button < _position(html.text, "If you have already paid")


def test_plain_text_part_says_the_same_in_the_same_order() -> None:
    msg = compose(reminder(), settings())
    html = " ".join(page(msg.html).text)
    parts = [
        "Dear Jane Doe,",
        "Our records show that invoice INV-2026-0007",
        "Invoice: INV-2026-0007",
        "Due date: March 2, 2026",
        "Overdue: 4 days",
        "Balance due: €200.00 (of the original €1,234.50)",
        LINK,
        "If you have already paid",
        "Kind regards",
        "Acme Supplies Ltd",
        "Unsubscribe from reminder emails",
    ]
    positions = [msg.text.index(p) for p in parts]
    assert positions == sorted(positions)
    for part in (
        "Dear Jane Doe,",
        "INV-2026-0007",
        "March 2, 2026",
        "4 days",
        "€200.00",
        "If you have already paid, please disregard this message.",
        "Kind regards",
    ):
        assert part in html


def test_without_link_no_button_and_the_contact_instead() -> None:
    msg = compose(reminder(payment_link=None), settings())
    html = page(msg.html)
    assert "Pay now" not in html.text
    assert "To arrange payment, contact us at billing@example.com." in html.text
    assert "To arrange payment, contact us at billing@example.com." in msg.text


def test_before_the_due_date_the_summary_has_no_days_overdue() -> None:
    msg = compose(
        reminder(stage="pre_due", days_overdue=-3, balance_due=Decimal("1234.50")), settings()
    )
    assert "Overdue" not in msg.text and "original" not in msg.text
    assert "Balance due: €1,234.50" in msg.text
    assert "Overdue" not in page(msg.html).text


def test_logo_and_brand_colour_from_settings() -> None:
    plain = compose(reminder(), settings())
    assert "<img" not in (plain.html or "") and "#1a73e8" in (plain.html or "")
    logo = "https://cdn.example.com/logo.png"
    branded = compose(reminder(), settings(email_logo_url=logo, email_brand_color="#0B6E4F"))
    html = page(branded.html)
    assert html.images == [logo]
    assert branded.html is not None and "#0b6e4f" in branded.html and "#1a73e8" not in branded.html
    # A light brand colour gets dark button text, and links fall back to a readable blue.
    light = compose(reminder(), settings(email_brand_color="#ffd400"))
    assert light.html is not None
    assert re.search(r"background:#ffd400;[^>]*>\s*<a [^>]*color:#111827", light.html)
    assert brand_colors("#ffd400")["link_color"] == "#1d4ed8"
    assert contrast("#ffffff", "#000000") == pytest.approx(21)


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("email_logo_url", "http://cdn.example.com/logo.png", "must be an https:// URL"),
        ("email_logo_url", "javascript:alert(1)", "must be an https:// URL"),
        ("email_logo_url", 'https://x.example/a.png" onerror="x', "must be an https:// URL"),
        ("email_brand_color", "blue", "must be a hex colour"),
        ("email_brand_color", "#12345", "must be a hex colour"),
        ("email_brand_color", "#123;background:url(x)", "must be a hex colour"),
    ],
)
def test_branding_settings_are_validated(key: str, value: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        settings(**{key: value})


def test_branding_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_EMAIL_LOGO_URL", "https://cdn.example.com/l.svg")
    monkeypatch.setenv("DUNNING_EMAIL_BRAND_COLOR", "#ABC")
    reload_settings()
    loaded = ChannelSettings()
    assert (loaded.email_logo_url, loaded.email_brand_color) == (
        "https://cdn.example.com/l.svg",
        "#abc",
    )
    monkeypatch.setenv("DUNNING_EMAIL_BRAND_COLOR", "red")
    reload_settings()
    with pytest.raises(ValidationError, match="DUNNING_EMAIL_BRAND_COLOR"):
        ChannelSettings()


def test_several_invoices_are_a_table_with_one_total_per_currency() -> None:
    first = reminder()
    others = [
        reminder(
            reminder_id=42,
            invoice_id=8,
            invoice_number="INV-2026-0008",
            balance_due=Decimal("50.00"),
            amount=Decimal("50.00"),
            due_on=dt.date(2026, 2, 20),
            days_overdue=14,
            payment_link="https://pay.example.com/inv/8",
        ),
        reminder(
            reminder_id=43,
            invoice_id=9,
            invoice_number="INV-2026-0009",
            currency="USD",
            balance_due=Decimal("75.00"),
            amount=Decimal("75.00"),
            payment_link=None,
        ),
    ]
    msg = compose(first, settings(), invoices=[first, *others])
    assert msg.html is not None
    html = page(msg.html)
    assert msg.html.count("<tr>") >= 4 and "<thead>" in msg.html
    for number in ("INV-2026-0007", "INV-2026-0008", "INV-2026-0009"):
        assert number in html.text and number in msg.text
    assert ("https://pay.example.com/inv/8", "INV-2026-0008") in html.links
    assert "€250.00" in html.text and "$75.00" in html.text  # never added across currencies
    assert "Total due: €250.00" in msg.text and "Total due: $75.00" in msg.text
    assert "14 days" in html.text and "Overdue: 14 days" in msg.text


def test_japanese_email_layout() -> None:
    msg = compose(
        reminder(
            locale="ja_JP",
            currency="JPY",
            amount=Decimal("540000"),
            balance_due=Decimal("540000"),
            customer_name="佐藤 健二",
        ),
        settings(),
    )
    html = page(msg.html)
    assert html.text[1] == "佐藤 健二 様"  # after the <title>
    assert html.text[_position(html.text, "ご請求残高") + 1] == "￥540,000"
    assert (LINK, "お支払い手続きへ") in html.links
    assert "請求書番号：INV-2026-0007" in msg.text and "お支払期日：2026年3月2日" in msg.text

"""Templates: every stage x channel x locale renders; strict fields; safe data; merge fields."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import re
from decimal import Decimal
from pathlib import Path

import pytest
from babel.dates import format_date
from babel.numbers import format_currency
from pydantic import SecretStr

from dunning.config.channels import ChannelSettings
from dunning.errors import TemplateError
from dunning.locales import locale_candidates
from dunning.policy import DEFAULT_POLICY_PATH, load_policy
from dunning.policy.model import base_stage
from dunning.render import (
    DEFAULT_TEMPLATES_DIR,
    compose,
    compose_group,
    lead_reminder,
    render_template,
    unsubscribe_token,
    verify_unsubscribe_token,
)
from dunning.render.speech import spoken_invoice_number
from dunning.sms import count_segments
from tests.render_support import reminder

_VARIANT_FILE = re.compile(
    r"^(email|sms)\.[a-z]{2}\.(?!subject\.txt$)[A-Za-z0-9_-]+(\.subject)?\.txt$"
)
#: The stages of the default policy (their templates ship with the package).
STAGES = load_policy(DEFAULT_POLICY_PATH).stage_names

LANGS = ("en", "de", "fr", "es", "ja", "pt", "it", "nl")
#: Languages written in GSM-7's script: their SMS must not fall into UCS-2 on our own words.
LATIN_LANGS = tuple(lang for lang in LANGS if lang != "ja")


@pytest.fixture
def settings() -> ChannelSettings:
    return ChannelSettings(
        unsubscribe_secret=SecretStr("s3cret"),
        unsubscribe_base_url="https://u.example/x",
        postal_address="1 Example Street, 12345 Springfield",
    )


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("lang", LANGS)
def test_every_template_renders_in_every_locale(
    stage: str, lang: str, settings: ChannelSettings
) -> None:
    for channel in ("email", "sms", "voice"):
        for tone in ("friendly", "helpful", "neutral", "firm", "final", None):
            data = reminder(
                stage=stage,
                channel=channel,
                locale=f"{lang}_XX",
                tone=tone,
                balance_due=Decimal("200.00"),
            )
            msg = compose(data, settings)
            assert msg.template_key == f"{stage}/{channel}.{lang}"
            assert msg.locale == lang
            number = (
                spoken_invoice_number("INV-2026-0007") if channel == "voice" else ("INV-2026-0007")
            )
            assert number in msg.text
            assert "{{" not in msg.text and "{%" not in msg.text
            if channel == "email":
                assert msg.subject and "INV-2026-0007" in msg.subject and "\n" not in msg.subject
                assert msg.html and "INV-2026-0007" in msg.html
                assert settings.postal_address in msg.text and settings.postal_address in msg.html
            else:
                assert msg.to == "+4915112345678"
    # Every file on disk belongs to a stage/lang the loop above rendered (experiment variants,
    # <channel>.<lang>.<variant>[.subject].txt, are rendered by test_experiment_variants_render).
    files = {
        p.name for p in (DEFAULT_TEMPLATES_DIR / stage).iterdir() if not _VARIANT_FILE.match(p.name)
    }
    assert files == {
        f"{c}.{lg}{s}"
        for lg in LANGS
        for c, s in (
            ("email", ".subject.txt"),
            ("email", ".txt"),
            ("sms", ".txt"),
            ("voice", ".txt"),
        )
    }


def test_missing_field_raises_naming_template_line_and_field() -> None:
    with pytest.raises(TemplateError) as info:
        render_template("overdue_1/email.en.txt", {"customer_name": "Jane", "lang": "en"})
    assert str(info.value).startswith(
        "template overdue_1/email.en.txt line 1: field 'invoice_number' is undefined"
    )


def test_missing_field_in_a_shared_phrase_names_that_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "_shared").mkdir()
    (tmp_path / "_shared" / "en.txt").write_text(
        "{# phrases #}\n{% macro greeting() %}Dear {{ customer_nme }},{% endmacro %}"
    )
    (tmp_path / "body.txt").write_text("{{ s.greeting() }} pay now")
    with pytest.raises(TemplateError) as info:
        render_template("body.txt", {"customer_name": "Jane", "lang": "en"}, tmp_path)
    assert str(info.value).startswith(
        "template _shared/en.txt line 2 (rendering body.txt): field 'customer_nme' is undefined"
    )


def test_missing_field_is_named(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("Hello {{ customer_name }}, pay {{ balance_due }}")
    with pytest.raises(TemplateError, match=r"x\.txt.*'balance_due' is undefined"):
        render_template("x.txt", {"customer_name": "Jane"}, tmp_path)


def test_syntax_error_is_a_template_error(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("Hello {{ customer_name ")
    with pytest.raises(TemplateError, match=r"bad\.txt line 1: syntax error"):
        render_template("bad.txt", {"customer_name": "x"}, tmp_path)


def test_sandbox_refuses_unsafe_template(tmp_path: Path) -> None:
    (tmp_path / "evil.txt").write_text("{{ ''.__class__.__mro__ }}")
    with pytest.raises(TemplateError):
        render_template("evil.txt", {}, tmp_path)


def test_customer_name_is_data_not_template(settings: ChannelSettings) -> None:
    name = "{{ 7*7 }} <script>alert(1)</script>"
    msg = compose(reminder(customer_name=name), settings)
    assert "Dear {{ 7*7 }} <script>alert(1)</script>," in msg.text
    assert "49" not in msg.text
    assert msg.html is not None
    assert "<script>" not in msg.html
    assert "{{ 7*7 }} &lt;script&gt;alert(1)&lt;/script&gt;" in msg.html


def test_partly_paid_shows_balance_of_original(settings: ChannelSettings) -> None:
    msg = compose(reminder(balance_due=Decimal("200.00"), locale="en_US"), settings)
    assert "Balance due: €200.00 (of the original €1,234.50)" in msg.text
    full = compose(reminder(locale="en_US"), settings)
    assert "Balance due: €1,234.50\n" in full.text and "original" not in full.text


def test_money_and_date_use_the_customer_locale(settings: ChannelSettings) -> None:
    msg = compose(reminder(locale="de_DE", balance_due=Decimal("1000.00")), settings)
    assert "1.000,00\xa0€ (von ursprünglich 1.234,50\xa0€)" in msg.text
    assert "2. März 2026" in msg.text
    at = compose(reminder(locale="de_AT", due_on=dt.date(2026, 1, 5)), settings)
    assert at.template_key == "overdue_1/email.de"
    assert "5. Jänner 2026" in at.text  # Austrian month name: Babel got de_AT, not de


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("de_AT", ["de_AT", "de", "en"]),
        ("fr", ["fr", "en"]),
        ("es-MX", ["es_MX", "es", "en"]),
        ("en_GB", ["en_GB", "en"]),
    ],
)
def test_locale_candidates(locale: str, expected: list[str]) -> None:
    assert locale_candidates(locale) == expected


def test_unknown_language_falls_back_to_english_words_dates_and_amounts(
    settings: ChannelSettings,
) -> None:
    # No Polish templates: the words are English, so the date and the amount are too (not
    # "2 marca 2026" and "1234,50 €" inside an English sentence).
    msg = compose(reminder(locale="pl_PL"), settings)
    assert msg.template_key == "overdue_1/email.en" and msg.locale == "en"
    assert "due on March 2, 2026" in msg.text and "€1,234.50" in msg.text
    assert "marca" not in msg.text and "1234,50" not in msg.text
    assert msg.html is not None and '<html lang="en">' in msg.html
    sms = compose(reminder(locale="pl_PL", channel="sms", currency="PLN"), settings)
    assert sms.template_key == "overdue_1/sms.en" and "PLN1,234.50 due" in sms.text


def test_japanese_customer_gets_japanese_words_date_and_yen(settings: ChannelSettings) -> None:
    # The seed's ja_JP customers got English text around a Japanese date and a full-width yen.
    data = reminder(
        locale="ja_JP",
        currency="JPY",
        amount=Decimal("540000"),
        balance_due=Decimal("500000"),
        due_on=dt.date(2026, 11, 27),
        days_overdue=10,
        customer_name="佐藤 健二",
    )
    msg = compose(data, settings)
    assert msg.template_key == "overdue_1/email.ja" and msg.locale == "ja"
    assert msg.text.startswith("佐藤 健二 様\n\nいつも大変お世話になっております。")
    assert "お支払期日：2026年11月27日" in msg.text
    assert "ご請求残高：￥500,000（当初ご請求額 ￥540,000）" in msg.text
    assert "Dear" not in msg.text and "Invoice" not in msg.text
    assert msg.subject == "【お支払いのお願い】請求書 INV-2026-0007"
    assert msg.html is not None and '<html lang="ja">' in msg.html
    sms = compose(dataclasses.replace(data, channel="sms"), settings)
    assert sms.template_key == "overdue_1/sms.ja"
    assert "お支払期日を10日過ぎております。ご請求額：￥500,000" in sms.text
    assert count_segments(sms.text).encoding == "UCS-2"  # kana: UCS-2 is right


@pytest.mark.parametrize("lang", LANGS)
def test_words_dates_and_amounts_share_one_locale(lang: str, settings: ChannelSettings) -> None:
    # A regional variant Babel does not know formats in the language of the words.
    msg = compose(reminder(locale=f"{lang}_XX", balance_due=Decimal("200.00")), settings)
    assert msg.locale == lang
    day = format_date(dt.date(2026, 3, 2), format="long", locale=lang)
    assert day in msg.text
    assert format_currency(Decimal("200.00"), "EUR", locale=lang) in msg.text


@pytest.mark.parametrize("lang", LATIN_LANGS)
def test_latin_sms_stay_gsm7_in_every_month_and_currency(
    lang: str, settings: ChannelSettings
) -> None:
    # fr_CA SMS went UCS-2 for one "dû": our own words never force UCS-2 (a third of the room);
    # a customer's name with a letter GSM-7 lacks still may, and then UCS-2 is right.
    for stage in STAGES:
        for month in range(1, 13):
            for currency in ("EUR", "USD", "CAD", "GBP", "JPY"):
                amount = Decimal("5400") if currency == "JPY" else Decimal("1234.50")
                data = reminder(
                    stage=stage,
                    channel="sms",
                    locale=f"{lang}_CA",
                    due_on=dt.date(2026, month, 28),
                    currency=currency,
                    amount=amount,
                    balance_due=amount,
                )
                text = compose(data, settings).text
                assert count_segments(text).encoding == "GSM-7", (stage, month, currency, text)


def test_repeat_stage_uses_final_notice_templates(settings: ChannelSettings) -> None:
    assert base_stage("final_notice_r3") == "final_notice"
    msg = compose(reminder(stage="final_notice_r2", days_overdue=20), settings)
    assert msg.template_key == "final_notice/email.en"
    assert "final notice" in msg.text


def test_tone_switches_a_sentence(settings: ChannelSettings) -> None:
    firm = compose(reminder(tone="firm"), settings).text
    friendly = compose(reminder(tone="friendly"), settings).text
    assert "Please pay immediately" in firm and "Please pay immediately" not in friendly
    assert "thank you" in friendly
    # The policy's other tones map onto the same sentences.
    assert "Please pay immediately" in compose(reminder(tone="final"), settings).text
    assert "thank you" in compose(reminder(tone="helpful"), settings).text


def test_days_until_due_before_due_date(settings: ChannelSettings) -> None:
    msg = compose(reminder(stage="pre_due", days_overdue=-3), settings)
    assert "in 3 days" in msg.text and "March 2, 2026" in msg.text


def test_email_headers_and_custom_args(settings: ChannelSettings) -> None:
    msg = compose(reminder(), settings)
    token = unsubscribe_token(41, "s3cret")
    assert msg.headers["List-Unsubscribe"] == (
        f"<mailto:billing@example.com?subject=unsubscribe%20{token}>, <https://u.example/x/{token}>"
    )
    assert msg.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.custom_args == {"reminder_id": "41"}
    assert verify_unsubscribe_token(token, "s3cret") == 41
    assert verify_unsubscribe_token(token, "other") is None
    assert verify_unsubscribe_token("42" + token[2:], "s3cret") is None
    assert "s3cret" not in repr(settings)


def test_unsafe_payment_link_is_dropped(settings: ChannelSettings) -> None:
    msg = compose(reminder(payment_link="javascript:alert(1)"), settings)
    assert "javascript:" not in (msg.html or "") and "javascript:" not in msg.text
    assert "contact us at billing@example.com" in msg.text


def test_sms_opt_out_hint_and_segments(settings: ChannelSettings) -> None:
    msg = compose(reminder(channel="sms"), settings)
    assert msg.text.endswith("Reply STOP to opt out")
    assert msg.warnings == []
    de = compose(reminder(channel="sms", locale="de_DE"), settings)
    assert de.text.endswith("Antworten Sie STOP zum Abmelden")
    off = compose(reminder(channel="sms"), settings.model_copy(update={"sms_opt_out_hint": False}))
    assert "STOP" not in off.text
    tight = settings.model_copy(update={"sms_max_segments": 1})
    long = compose(
        reminder(channel="sms", payment_link="https://pay.example.com/" + "x" * 120), tight
    )
    assert len(long.warnings) == 1 and "DUNNING_SMS_MAX_SEGMENTS=1" in long.warnings[0]


def test_sms_amounts_stay_gsm7(settings: ChannelSettings) -> None:
    # Babel's French amounts use narrow no-break spaces, which would force UCS-2.
    msg = compose(reminder(channel="sms", locale="fr_FR", stage="due"), settings)
    assert "1 234,50 €" in msg.text


def test_missing_address_is_an_error(settings: ChannelSettings) -> None:
    with pytest.raises(TemplateError, match="reminder 41: customer C-1 has no email"):
        compose(reminder(email=None), settings)
    with pytest.raises(TemplateError, match="has no phone"):
        compose(reminder(channel="sms", phone=None), settings)


def test_custom_templates_dir_with_html_override(tmp_path: Path) -> None:
    stage = tmp_path / "due"
    stage.mkdir()
    for name in ("email.en.subject.txt", "email.en.txt"):
        (stage / name).write_text("{{ invoice_number }}")
    (stage / "email.en.html").write_text("<b>{{ customer_name }}</b>")
    for shared in ("_shared", "_layout"):
        (tmp_path / shared).symlink_to(DEFAULT_TEMPLATES_DIR / shared)
    s = ChannelSettings(templates_dir=str(tmp_path))
    msg = compose(reminder(stage="due", customer_name="<i>"), s)
    assert msg.html == "<b>&lt;i&gt;</b>"
    parsed = email.message_from_string(f"Subject: {msg.subject}\n\n{msg.text}")
    assert parsed["Subject"] == "INV-2026-0007"


def test_shared_phrases_come_in_the_context_and_an_explicit_import_still_works(
    tmp_path: Path,
) -> None:
    (tmp_path / "_shared").mkdir()
    (tmp_path / "_shared" / "en.txt").write_text(
        "{% macro greeting() %}Dear {{ customer_name }},{% endmacro %}"
    )
    (tmp_path / "plain.txt").write_text("{{ s.greeting() }} pay now")
    (tmp_path / "imports.txt").write_text(
        '{% import "_shared/en.txt" as s with context %}{{ s.greeting() }} pay now'
    )
    ctx = {"customer_name": "Jane", "lang": "en"}
    assert render_template("plain.txt", ctx, tmp_path) == "Dear Jane, pay now"
    assert render_template("imports.txt", ctx, tmp_path) == "Dear Jane, pay now"
    with pytest.raises(TemplateError, match=r"plain\.txt.*'s' is undefined"):
        render_template("plain.txt", {"customer_name": "Jane", "lang": "it"}, tmp_path)


@pytest.mark.parametrize("lang", LANGS)
def test_unsubscribe_page_in_every_email_language(lang: str) -> None:
    # The footer's link lands on a page in the language the email was written in.
    from dunning.webhooks.unsubscribe import page

    confirm = page(DEFAULT_TEMPLATES_DIR, f"{lang}_XX", "confirm")
    done = page(DEFAULT_TEMPLATES_DIR, f"{lang}_XX", "done")
    assert f'<html lang="{lang}">' in confirm and f'<html lang="{lang}">' in done
    assert 'name="List-Unsubscribe"' in confirm and "<form" not in done


def test_experiment_variants_render_and_a_missing_variant_falls_back(
    settings: ChannelSettings,
) -> None:
    """The shipped variant B of overdue_1 (email, sms; English) renders with its own words;
    a language without it, or an unknown variant, gets the control template."""
    for path in sorted(DEFAULT_TEMPLATES_DIR.glob("*/*.txt")):
        match = _VARIANT_FILE.match(path.name)
        if not match or path.name.endswith(".subject.txt"):
            continue
        channel, lang, variant = path.name.split(".")[:3]
        data = reminder(stage=path.parent.name, channel=channel, locale=f"{lang}_XX")
        data = dataclasses.replace(data, variant=variant)
        msg = compose(data, settings)
        assert msg.template_key == f"{path.parent.name}/{channel}.{lang}.{variant}"
        assert "INV-2026-0007" in msg.text and "{{" not in msg.text
    data = reminder(stage="overdue_1", channel="email", locale="de_DE", variant="B")
    assert compose(data, settings).template_key == "overdue_1/email.de"
    data = reminder(stage="overdue_1", channel="sms", locale="en_GB", variant="Z")
    assert compose(data, settings).template_key == "overdue_1/sms.en"


def _customer_reminders(stage: str, channel: str, locale: str, tone: str | None = "neutral"):
    """Three invoices of one customer in two currencies, the first at ``stage``."""
    return [
        reminder(stage=stage, channel=channel, locale=locale, tone=tone),
        reminder(
            reminder_id=42,
            invoice_id=8,
            invoice_number="INV-2026-0008",
            stage="overdue_1",
            channel=channel,
            locale=locale,
            tone=tone,
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
            stage="pre_due",
            channel=channel,
            locale=locale,
            tone=tone,
            currency="USD",
            balance_due=Decimal("1275.50"),
            amount=Decimal("1275.50"),
            due_on=dt.date(2026, 3, 8),
            days_overdue=-2,
        ),
    ]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("lang", LANGS)
def test_every_consolidated_template_renders_in_every_locale(
    stage: str, lang: str, settings: ChannelSettings
) -> None:
    for channel in ("email", "sms"):
        for tone in ("friendly", "neutral", "firm", "final", None):
            group = _customer_reminders(stage, channel, f"{lang}_XX", tone)
            msg = compose_group(group, settings)
            lead = lead_reminder(group)
            assert msg.reminder_id == lead.reminder_id
            assert msg.template_key == f"_customer/{channel}.{lang}" and msg.locale == lang
            assert "{{" not in msg.text and "{%" not in msg.text
            for number in ("INV-2026-0007", "INV-2026-0008", "INV-2026-0009"):
                assert number in msg.text
            if channel == "email":
                assert msg.subject and "3" in msg.subject and "\n" not in msg.subject
                assert msg.html and "INV-2026-0009" in msg.html and "<thead>" in msg.html
                # one total per currency, never added across currencies
                eur = format_currency(Decimal("1284.50"), "EUR", locale=lang)
                usd = format_currency(Decimal("1275.50"), "USD", locale=lang)
                if lang != "ja":
                    assert eur in msg.text and usd in msg.text
            else:
                count = count_segments(msg.text)
                assert count.segments <= settings.sms_max_segments, msg.text
                assert not msg.warnings
                if lang in LATIN_LANGS:
                    assert count.encoding == "GSM-7", msg.text
    files = {p.name for p in (DEFAULT_TEMPLATES_DIR / "_customer").iterdir()}
    assert files == {
        f"{c}.{lg}{s}"
        for lg in LANGS
        for c, s in (("email", ".subject.txt"), ("email", ".txt"), ("sms", ".txt"))
    }


def test_consolidated_message_is_worded_by_the_most_advanced_stage(
    settings: ChannelSettings,
) -> None:
    group = _customer_reminders("final_notice_r2", "email", "en_US", "final")
    group[0] = dataclasses.replace(group[0], days_overdue=30)
    msg = compose_group(group, settings)
    assert msg.subject == "Final notice: 3 unpaid invoices"
    assert "final notice regarding the 3 invoices below" in msg.text
    assert "Please pay immediately" in msg.text  # the lead's tone
    # oldest due date first; true days overdue of each; several pay links: no single button
    assert msg.text.index("INV-2026-0008") < msg.text.index("INV-2026-0007")
    assert "Overdue: 14 days" in msg.text and "Overdue: 30 days" in msg.text
    assert msg.html is not None and "Pay now</a>" not in msg.html
    sms = compose_group(_customer_reminders("overdue_2", "sms", "de_DE"), settings)
    assert sms.text.startswith("Acme Supplies Ltd: 3 Rechnungen sind weiterhin unbezahlt")
    assert "1.284,50 € + 1.275,50 $" in sms.text
    assert "Rechnungen: INV-2026-0008, INV-2026-0007, INV-2026-0009" in sms.text
    one = compose_group(_customer_reminders("overdue_2", "email", "en_US")[:1], settings)
    assert one.template_key == "overdue_2/email.en"  # a single invoice: its usual message

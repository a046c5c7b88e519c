"""Customer data is never template source: hostile names render literally, escaped in HTML."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from dunning.config.channels import ChannelSettings
from dunning.core.messages import ReminderData
from dunning.policy import DEFAULT_POLICY_PATH, load_policy
from dunning.render import compose
from dunning.sms import plain_text

JINJA = "{{ 7*7 }}{% for x in range(10**9) %}"
SCRIPT = "<script>alert(1)</script>"
HOSTILE_NAMES = [
    JINJA,
    SCRIPT,
    JINJA + SCRIPT,
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% include '/etc/passwd' %}{# comment #}",
    "{{ config }}{{ self }}{{ cycler.__init__.__globals__.os }}",
    "Robert'); DROP TABLE customers;--",
    '"><img src=x onerror=alert(1)>',
    '=HYPERLINK("http://evil.example","pay")',
    "Zoë Ünïcødé 山田 \u202eevil",
]
#: The stages of the default policy (their templates ship with the package).
STAGES = load_policy(DEFAULT_POLICY_PATH).stage_names
LOCALES = ["en_US", "de_DE", "fr_FR", "es_ES", "ja_JP", "pt_PT", "it_IT", "nl_NL"]
CHANNEL_SETTINGS = ChannelSettings()


def reminder(
    name: str,
    channel: str,
    stage: str = "overdue_1",
    locale: str = "en_US",
    invoice_number: str = "INV-1",
    link: str | None = "https://pay.example.com/x",
) -> ReminderData:
    return ReminderData(
        reminder_id=7,
        invoice_id=1,
        invoice_number=invoice_number,
        customer_id="C1",
        stage=stage,
        channel=channel,
        segment="good",
        tone="friendly",
        customer_name=name,
        email="ada@example.com",
        phone="+14155550100",
        locale=locale,
        timezone="America/New_York",
        country="US",
        currency="USD",
        amount=Decimal("100.00"),
        balance_due=Decimal("100.00"),
        due_on=dt.date(2026, 11, 1),
        days_overdue=3,
        payment_link=link,
    )


PLACEHOLDER = "Placeholder Name"


def _assert_literal(name: str, stage: str, locale: str, channel: str = "email") -> None:
    """The message for ``name`` is the message for a plain name with ``name`` pasted in:
    "{{ 7*7 }}" stays text (never 49) and a loop in the name never runs."""
    plain = compose(reminder(PLACEHOLDER, channel, stage, locale), CHANNEL_SETTINGS)
    msg = compose(reminder(name, channel, stage, locale), CHANNEL_SETTINGS)
    if channel == "sms":
        assert msg.text == plain.text.replace(PLACEHOLDER, plain_text(name))
        return
    assert PLACEHOLDER in plain.text and msg.subject == plain.subject
    assert msg.text == plain.text.replace(PLACEHOLDER, name)
    assert msg.html is not None and plain.html is not None
    assert msg.html == plain.html.replace(PLACEHOLDER, str(escape(name)))
    if "<script>" in name:
        assert "<script>" not in msg.html


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("locale", LOCALES)
def test_hostile_names_render_literally_in_every_email_template(stage: str, locale: str) -> None:
    for name in HOSTILE_NAMES:
        _assert_literal(name, stage, locale)


def test_hostile_invoice_numbers_and_links_are_inert() -> None:
    number = SCRIPT + JINJA
    msg = compose(
        reminder("Ada", "email", invoice_number=number, link="javascript:alert(document.cookie)"),
        CHANNEL_SETTINGS,
    )
    assert msg.html is not None
    assert number in msg.text and str(escape(number)) in msg.html
    assert "<script>" not in msg.html and "javascript:" not in msg.html + msg.text
    sms = compose(reminder("Ada", "sms", invoice_number=number), CHANNEL_SETTINGS)
    assert number in sms.text


@pytest.mark.parametrize("stage", STAGES)
def test_sms_templates_keep_hostile_input_literal(stage: str) -> None:
    for name in HOSTILE_NAMES:
        _assert_literal(name, stage, "en_US", "sms")


# Names a person could type, weighted towards template and markup syntax.
_PIECES = st.sampled_from(
    [
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "#}",
        "<",
        ">",
        "&",
        '"',
        "'",
        "7*7",
        " ",
        "range(10**9)",
        "\\",
        "$",
        "`",
    ]
)
_NAMES = (
    st.lists(
        st.one_of(
            _PIECES,
            st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=8),
        ),
        min_size=1,
        max_size=12,
    )
    .map("".join)
    .filter(lambda s: s.strip() == s and s != "")
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=_NAMES, locale=st.sampled_from(LOCALES))
def test_any_name_renders_literally(name: str, locale: str) -> None:
    _assert_literal(name, "due", locale)

"""What a reminder call says: the stage's voice template and the spoken phrases of the call
(menu, voicemail, replies to digits), in the customer's language, written for speech.

Layout of templates/ for calls:
    <stage>/voice.<lang>.txt    the reminder itself (merge fields as for SMS, plus spoken_*)
    _voice/<lang>.txt           macros: greeting, balance, menu(offer_link), voicemail,
                                link_sent, link_no_consent, link_failed, connecting,
                                no_support, opted_out, invalid, goodbye
The stage template sees the phrases as ``v`` (``{{ v.greeting() }}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2
import pandas as pd
import phonenumbers

from dunning.config import get_settings
from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage, ReminderData
from dunning.errors import TemplateError
from dunning.locales import ResolvedLocale
from dunning.policy.model import base_stage
from dunning.render import (
    build_context,
    render_template,
    resolve,
    templates_dir,
    with_shared_phrases,
)
from dunning.render.speech import (
    Voice,
    choose_voice,
    spoken_amount,
    spoken_date,
    spoken_invoice_number,
)

#: The replies a call can speak after a digit, each a macro of _voice/<lang>.txt.
PHRASES = (
    "link_sent",
    "link_no_consent",
    "link_failed",
    "connecting",
    "no_support",
    "opted_out",
    "invalid",
    "goodbye",
)


@dataclass(frozen=True)
class CallScript:
    """Everything one reminder call can say, rendered once."""

    reminder_id: int
    voice: Voice
    message: str  # the reminder, written for speech
    menu: str  # the digits on offer
    voicemail: str  # the short message left on an answering machine
    phrases: dict[str, str]  # reply name (PHRASES) -> text
    offer_link: bool  # whether digit 2 (payment link by SMS) is on offer
    template_key: str  # e.g. final_notice/voice.de
    lang: str  # template language


def spoken_phone(number: str | None) -> str:
    """``number`` (E.164) read out digit by digit in its international groups
    (``+4930123456`` -> ``+4 9, 3 0, 1 2 3 4 5 6``), or "" when there is none."""
    if not number:
        return ""
    try:
        text = phonenumbers.format_number(
            phonenumbers.parse(number), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
    except phonenumbers.NumberParseException:
        text = number
    groups = [g for g in text.replace("-", " ").split() if g]
    return ", ".join(" ".join(g) for g in groups)


def _context(
    data: ReminderData, where: ResolvedLocale, settings: ChannelSettings
) -> dict[str, Any]:
    # Amounts and dates are spoken in the language of the words (the one resolved locale):
    # after a fallback to English a Japanese date would be read out by an English voice.
    fmt = where.formats
    return {
        **build_context(data, where, settings),
        "spoken_balance": spoken_amount(data.balance_due, data.currency, fmt),
        "spoken_amount": spoken_amount(data.amount, data.currency, fmt),
        "spoken_due_date": spoken_date(data.due_on, fmt),
        "spoken_invoice_number": spoken_invoice_number(data.invoice_number),
        "spoken_support_number": spoken_phone(settings.voice_support_number),
    }


def _say(text: object) -> str:
    # One line: TTS pauses at punctuation, not at the template's line breaks.
    return " ".join(str(text).split())


def call_script(
    data: ReminderData, settings: ChannelSettings, offer_link: bool = False
) -> CallScript:
    """The script of the call for ``data``; ``offer_link`` puts digit 2 (payment link by SMS)
    in the menu. Raises TemplateError naming the template when one is missing or broken."""
    directory = templates_dir(settings)
    where = resolve(data.stage, "voice", data.locale, directory)
    lang = where.lang
    voice = choose_voice(data.locale, lang)
    ctx = with_shared_phrases(_context(data, where, settings), directory, "_voice", "v")
    if "v" not in ctx:
        raise TemplateError(
            f"no spoken phrases for language {lang!r}: expected {directory}/_voice/{lang}.txt"
        )
    base = base_stage(data.stage)
    message = _say(render_template(f"{base}/voice.{lang}.txt", ctx, directory))
    phrases = ctx["v"]
    try:
        menu = _say(phrases.menu(offer_link))
        voicemail = _say(phrases.voicemail())
        replies = {name: _say(getattr(phrases, name)()) for name in PHRASES}
    except (jinja2.TemplateError, AttributeError, TypeError) as exc:
        raise TemplateError(
            f"template _voice/{lang}.txt: {exc}; every macro of "
            f"{', '.join(('menu', 'voicemail') + PHRASES)} must exist"
        ) from None
    return CallScript(
        data.reminder_id,
        voice,
        message,
        menu,
        voicemail,
        replies,
        offer_link,
        f"{base}/voice.{lang}",
        lang,
    )


def language_notes(stages: pd.Series, channels: pd.Series, locales: pd.Series) -> list[str]:
    """Per plan line, why its call speaks English instead of the customer's language (""
    for every other line); worked out once per (stage, locale) of the calls."""
    directory = templates_dir(get_settings().channels)
    keys = list(zip(stages.astype(str), channels.astype(str), locales.astype(str), strict=True))
    notes: dict[tuple[str, str, str], str] = {}
    for key in dict.fromkeys(k for k in keys if k[1] == "voice"):
        try:
            lang = resolve(key[0], "voice", key[2], directory).lang
        except TemplateError as exc:
            notes[key] = str(exc)
            continue
        notes[key] = choose_voice(key[2], lang).fallback or ""
    return [notes.get(k, "") for k in keys]


def compose_voice(data: ReminderData, settings: ChannelSettings) -> OutboundMessage:
    """The reminder call for ``data`` as an OutboundMessage: ``text`` is what the call says
    (kept in the ledger), ``to`` the number called. The TwiML is built when Twilio fetches
    it (dunning.webhooks.voice), because answering-machine detection decides which one."""
    if not data.phone:
        raise TemplateError(
            f"reminder {data.reminder_id}: customer {data.customer_id} has no "
            "phone number; import one or plan email instead"
        )
    script = call_script(data, settings)
    return OutboundMessage(
        reminder_id=data.reminder_id,
        channel="voice",
        to=data.phone,
        text=script.message,
        template_key=script.template_key,
        locale=script.lang,
        custom_args={"reminder_id": str(data.reminder_id)},
        warnings=[script.voice.fallback] if script.voice.fallback else [],
    )

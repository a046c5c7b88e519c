"""Answering Twilio during a reminder call: the TwiML for who picked up and for each digit.

Called by the webhook receiver (``/webhooks/twilio/voice``) after the request's signature
was verified. Unlike other webhooks this one acts at once, because the caller is waiting:
- no digit yet: a person hears the reminder and the menu; an answering machine
  (``AnsweredBy`` machine_*/fax) gets the short call-back message;
- 1: the reminder again; 2: the payment link by SMS, through the ledger as its own row
  (stage ``payment_link``, channel sms) so consent, opt-out and balance are re-checked and
  it goes out at most once per invoice; 3: ``<Dial>`` to DUNNING_VOICE_SUPPORT_NUMBER;
  9: the customer's voice opt-out, recorded before the answer is sent; anything else: the
  menu again.
Every digit is kept as a delivery event of the reminder (``digit_<n>``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import partial

import pandas as pd
from sqlalchemy import Engine
from twilio.twiml.voice_response import VoiceResponse

from dunning import ledger
from dunning.channels.base import Channel
from dunning.config import get_settings
from dunning.config.channels import ChannelSettings
from dunning.db import session_scope
from dunning.db.models import Reminder, utcnow
from dunning.delivery import deliver_batch
from dunning.errors import DunningError
from dunning.ledger.events import opt_out, record_event
from dunning.render import compose
from dunning.render.voice import call_script
from dunning.voice import twiml
from dunning.voice.calls import Call, load_call

#: The stage of the SMS that carries a payment link asked for in a call (templates/payment_link).
PAYMENT_LINK = "payment_link"


def hang_up() -> str:
    """TwiML that ends the call at once (an unknown or withdrawn reminder)."""
    response = VoiceResponse()
    response.hangup()
    return str(response.to_xml())


def respond(
    engine: Engine,
    reminder_id: int,
    fields: Mapping[str, str],
    action_url: str,
    settings: ChannelSettings,
    sms_channel: Callable[[], Channel],
    now: dt.datetime | None = None,
) -> str:
    """The TwiML answering Twilio's request ``fields`` (CallSid, AnsweredBy, Digits...) for
    the call of voice reminder ``reminder_id``; digits are posted back to ``action_url``.
    ``sms_channel`` gives the SMS channel when a payment link is to be sent."""
    now = now or utcnow()
    try:
        call = load_call(engine, reminder_id, now)
    except DunningError:
        return hang_up()
    script = call_script(call.data, settings, call.offer_link)
    digits = (fields.get("Digits") or "").strip()
    if not digits:
        answered = fields.get("AnsweredBy") or ""
        if answered.startswith(("machine", "fax")):
            return twiml.voicemail(script)
        return twiml.answer(script, action_url)
    digit = digits[0]
    call_sid = fields.get("CallSid") or "unknown"
    _record_digit(engine, reminder_id, call_sid, digit, now)
    if digit == "1":
        return twiml.answer(script, action_url)
    if digit == "2":
        return twiml.reply(
            script, _payment_link(engine, call, call_sid, settings, sms_channel, now), action_url
        )
    if digit == "3":
        number = settings.voice_support_number
        return (
            twiml.dial(script, number) if number else twiml.reply(script, "no_support", action_url)
        )
    if digit == "9":
        with session_scope(engine) as session:
            opt_out(session, [call.data.customer_id], "voice", opted_out=True)
        return twiml.reply(script, "opted_out", None)
    return twiml.reply(script, "invalid", action_url)


def _record_digit(
    engine: Engine, reminder_id: int, call_sid: str, digit: str, now: dt.datetime
) -> None:
    with session_scope(engine) as session:
        reminder = session.get(Reminder, reminder_id)
        # The event id counts the digits of this call so pressing 1 twice is kept twice.
        for n in range(100):
            if record_event(
                session, reminder, "twilio", f"{call_sid}:digit:{n}", f"digit_{digit}", now
            ):
                return


def _payment_link(
    engine: Engine,
    call: Call,
    call_sid: str,
    settings: ChannelSettings,
    sms_channel: Callable[[], Channel],
    now: dt.datetime,
) -> str:
    """The phrase to say after digit 2, having sent the payment link when allowed."""
    if not call.offer_link:
        return "link_no_consent" if not call.sms_allowed else "link_failed"
    data = call.data
    sends = pd.DataFrame(
        [
            {
                "invoice_id": data.invoice_id,
                "customer_id": data.customer_id,
                "stage": PAYMENT_LINK,
                "channel": "sms",
                "segment": data.segment,
                "tone": "helpful",
                "not_before": None,
            }
        ]
    )
    ids = ledger.record_plan(engine, sends, run_id=f"call:{call_sid}", as_of=now)
    if not ids:
        # The row exists and is no longer planned: the link went (or is going) out already.
        return "link_sent"
    result = deliver_batch(
        engine,
        ids,
        claimer=f"call:{call_sid}"[:64],
        channels={"sms": sms_channel()},
        compose=partial(compose, settings=settings),
        lease_seconds=get_settings().lease_seconds,
        as_of=now,
    )
    return (
        "link_sent"
        if result.sent
        else (
            "link_no_consent"
            if "no_sms_consent" in result.skip_reasons or "sms_opt_out" in result.skip_reasons
            else "link_failed"
        )
    )

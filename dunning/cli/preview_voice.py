"""``dunning preview --channel voice``: the TwiML a reminder call would be served."""

from __future__ import annotations

from sqlalchemy import Engine, select

from dunning.channels.twilio_voice import answer_url
from dunning.cli.app import console, emit_json, out
from dunning.config import get_settings
from dunning.core.messages import ReminderData
from dunning.db.models import Customer
from dunning.render.voice import call_script
from dunning.voice import twiml
from dunning.voice.calls import link_on_offer


def show_call(engine: Engine, data: ReminderData, json_mode: bool) -> None:
    """Print what the call for ``data`` says and its TwiML (person and answering machine)."""
    settings = get_settings().channels
    with engine.connect() as conn:
        consent, opt_out, not_mobile = conn.execute(
            select(Customer.sms_consent, Customer.sms_opt_out, Customer.not_mobile).where(
                Customer.customer_id == data.customer_id
            )
        ).one()
    offer = link_on_offer(consent, opt_out, data.phone, data.payment_link, not_mobile)
    script = call_script(data, settings, offer)
    url = answer_url(settings.webhook_public_url, data.reminder_id)
    person, machine = twiml.answer(script, url), twiml.voicemail(script)
    if json_mode:
        emit_json(
            {
                "channel": "voice",
                "stage": data.stage,
                "template": script.template_key,
                "locale": script.lang,
                "language": script.voice.language,
                "voice": script.voice.voice,
                "to": data.phone,
                "text": script.message,
                "twiml": person,
                "voicemail_twiml": machine,
                "offer_link": script.offer_link,
                "warnings": [script.voice.fallback] if script.voice.fallback else [],
            }
        )
        return
    out.rule(f"voice · {script.template_key} · stage {data.stage}")
    out.print(f"To: {data.phone}", highlight=False, markup=False, soft_wrap=True)
    out.print(
        f"Voice: {script.voice.language} ({script.voice.voice})", highlight=False, markup=False
    )
    out.print("")
    out.print(person, highlight=False, markup=False, soft_wrap=True)
    out.print("")
    out.print("Answering machine:", highlight=False, markup=False)
    out.print(machine, highlight=False, markup=False, soft_wrap=True)
    if script.voice.fallback:
        console.print(f"[yellow]warning:[/] {script.voice.fallback}")

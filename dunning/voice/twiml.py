"""The TwiML of a reminder call, built with the twilio SDK's ``VoiceResponse``.

- ``answer``: a person picked up — the reminder, then ``<Gather numDigits="1">`` with the menu
  (1 repeat, 2 payment link by SMS, 3 support, 9 no more calls); silence ends the call.
- ``voicemail``: answering-machine detection heard a machine — a short message asking to
  call back.
- ``reply``: a phrase after a digit, then the menu again (or the end of the call).
- ``dial``: connect to the support number.
TwiML reference: https://www.twilio.com/docs/voice/twiml (Say, Gather, Dial, Hangup).
"""

from __future__ import annotations

from twilio.twiml.voice_response import Gather, VoiceResponse

from dunning.render.voice import CallScript

#: Seconds <Gather> waits for a digit after the menu.
GATHER_TIMEOUT = 6


def _say(response: VoiceResponse | Gather, script: CallScript, text: str) -> None:
    response.say(text, language=script.voice.language, voice=script.voice.voice)


def _menu(response: VoiceResponse, script: CallScript, action_url: str, *before: str) -> None:
    gather = response.gather(num_digits=1, action=action_url, method="POST", timeout=GATHER_TIMEOUT)
    for text in before:
        _say(gather, script, text)
    _say(gather, script, script.menu)
    # No digit: the call ends politely rather than ringing through the menu forever.
    _say(response, script, script.phrases["goodbye"])
    response.hangup()


def answer(script: CallScript, action_url: str) -> str:
    """The TwiML when a person answers: the reminder, then the menu (digits to ``action_url``)."""
    response = VoiceResponse()
    _menu(response, script, action_url, script.message)
    return str(response.to_xml())


def voicemail(script: CallScript) -> str:
    """The TwiML for an answering machine: the short call-back message, then hang up."""
    response = VoiceResponse()
    _say(response, script, script.voicemail)
    response.hangup()
    return str(response.to_xml())


def reply(script: CallScript, phrase: str, action_url: str | None) -> str:
    """The TwiML saying ``script.phrases[phrase]``, then the menu again (``action_url``) or,
    when ``action_url`` is None, the end of the call."""
    response = VoiceResponse()
    if action_url is None:
        _say(response, script, script.phrases[phrase])
        response.hangup()
    else:
        _menu(response, script, action_url, script.phrases[phrase])
    return str(response.to_xml())


def dial(script: CallScript, number: str) -> str:
    """The TwiML connecting the caller to ``number`` (E.164) after a short notice."""
    response = VoiceResponse()
    _say(response, script, script.phrases["connecting"])
    response.dial(number)
    return str(response.to_xml())

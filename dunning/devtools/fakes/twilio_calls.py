"""Fake Twilio Calls (API 2010-04-01): create, fetch, list, and the call itself.

Wire format follows Twilio's OpenAPI document (twilio_api_v2010_calls.json). A created call
is played out in the background like Twilio does: it rings, is answered by a person or a
machine (answering-machine detection reports ``AnsweredBy``) or ends no-answer / busy /
failed; an answered call fetches its TwiML from ``Url`` with a signed POST, speaks it, and
presses the digits configured for the number at each ``<Gather>`` (signed POSTs to the
action URL). The end of the call is reported to ``StatusCallback``, signed.

How a number behaves comes from ``FakeConfig.twilio_call_answers`` (number -> human,
machine, no-answer, busy, failed; default human) and ``twilio_call_digits`` (number ->
digits pressed in turn).
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dunning.devtools.fakes.context import FakeContext
from dunning.devtools.fakes.state import Received
from dunning.devtools.fakes.twilio import (
    _E164,
    API_VERSION,
    PREFIX,
    TwilioError,
    list_page,
    magic_to_error,
    matches,
    rfc2822,
    sign,
)
from dunning.devtools.fakes.twilio_app import (
    create_resource,
    fetch_one,
    list_all,
)

OUTCOMES = ("human", "machine", "no-answer", "busy", "failed")
CALL_FILTERS = ("To", "From", "Status", "StartTime", "StartTime<", "StartTime>")
_DETECTION = ("Enable", "DetectMessageEnd")
#: Bound on TwiML documents one call fetches (digits, redirects): a loop in the receiver's
#: TwiML ends the call instead of the test.
MAX_STEPS = 12


def new_call(form: dict[str, str], account_sid: str, sid: str, now: dt.datetime) -> dict[str, Any]:
    """A queued outbound call resource for a valid create request; raises TwilioError."""
    to, from_ = form.get("To", "").strip(), form.get("From", "").strip()
    if not to:
        raise TwilioError(400, 21201, "No 'To' number is specified")
    if not from_:
        raise TwilioError(400, 21213, "No 'From' number is specified")
    url = form.get("Url", "").strip()
    if not (url or form.get("Twiml") or form.get("ApplicationSid")):
        raise TwilioError(400, 21205, "Url, Twiml or ApplicationSid is required")
    if url and urlsplit(url).scheme not in ("http", "https"):
        raise TwilioError(400, 21205, f"Url is not a valid URL: {url}")
    detection = form.get("MachineDetection")
    if detection and detection not in _DETECTION:
        raise TwilioError(400, 20001, f"MachineDetection must be one of {list(_DETECTION)}")
    if not _E164.match(to):
        raise TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    error = magic_to_error(to, from_)
    if error:
        raise error
    uri = f"{PREFIX}/{account_sid}/Calls/{sid}"
    stamp = rfc2822(now)
    return {
        "sid": sid,
        "date_created": stamp,
        "date_updated": stamp,
        "parent_call_sid": None,
        "account_sid": account_sid,
        "to": to,
        "to_formatted": to,
        "from": from_,
        "from_formatted": from_,
        "phone_number_sid": None,
        "status": "queued",
        "start_time": None,
        "end_time": None,
        "duration": None,
        "price": None,
        "price_unit": "USD",
        "direction": "outbound-api",
        "answered_by": None,
        "api_version": API_VERSION,
        "forwarded_from": None,
        "group_sid": None,
        "caller_name": None,
        "queue_time": "0",
        "trunk_sid": None,
        "uri": f"{uri}.json",
        "subresource_uris": {
            "recordings": f"{uri}/Recordings.json",
            "notifications": f"{uri}/Notifications.json",
        },
        "_started_at": None,
        "_form": dict(form),
        "_transcript": [],
    }


def call_matches(resource: dict[str, Any], query: dict[str, str]) -> bool:
    """Whether a call passes the list filters To, From, Status and StartTime (=, <, >)."""
    return matches(resource, query, date="StartTime", field="_started_at")


def call_params(resource: dict[str, Any], status: str) -> dict[str, str]:
    """The form fields Twilio sends with a call's webhooks (TwiML fetch, status callback)."""
    params = {
        "AccountSid": resource["account_sid"],
        "ApiVersion": API_VERSION,
        "CallSid": resource["sid"],
        "CallStatus": status,
        "Direction": "outbound-api",
        "From": resource["from"],
        "To": resource["to"],
        "Called": resource["to"],
        "Caller": resource["from"],
    }
    if resource.get("answered_by"):
        params["AnsweredBy"] = resource["answered_by"]
    return params


def answered_by(outcome: str, detection: str | None) -> str | None:
    """What answering-machine detection reports: None without detection; a machine is
    reported after the beep with DetectMessageEnd, at once with Enable."""
    if not detection or outcome not in ("human", "machine"):
        return None
    if outcome == "human":
        return "human"
    return "machine_end_beep" if detection == "DetectMessageEnd" else "machine_start"


class _Player:
    """Plays one answered call: fetches TwiML, speaks it, presses digits at <Gather>."""

    def __init__(self, ctx: FakeContext, sid: str, digits: str) -> None:
        self.ctx, self.sid, self.digits = ctx, sid, list(digits)

    def note(self, *entry: str) -> None:
        resource = self.ctx.state.get_twilio_call(self.sid)
        if resource is not None:
            self.ctx.state.update_twilio_call(
                self.sid, _transcript=[*resource["_transcript"], tuple(entry)]
            )

    async def fetch(self, url: str, extra: dict[str, str]) -> ET.Element | None:
        resource = self.ctx.state.get_twilio_call(self.sid)
        if resource is None:
            return None
        params = {**call_params(resource, "in-progress"), **extra}
        status, text = await self.ctx.post_for_text(
            "twilio_voice",
            url,
            form=params,
            headers=sign(self.ctx.config.twilio_auth_token, url, params),
        )
        self.note("fetch", url, str(status))
        if status != 200:
            # Twilio speaks "an application error has occurred" and hangs up.
            self.note("error", f"HTTP {status}")
            return None
        try:
            return ET.fromstring(text)  # noqa: S314 - TwiML of the local receiver under test
        except ET.ParseError:
            self.note("error", "TwiML is not XML")
            return None

    async def play(self, url: str) -> None:
        document, current = await self.fetch(url, {}), url
        for _ in range(MAX_STEPS):
            if document is None:
                return
            step = await self.run(document, current)
            if step is None:
                return
            current = step[0]
            document = await self.fetch(current, step[1])
        self.note("error", f"more than {MAX_STEPS} TwiML documents")

    async def run(self, document: ET.Element, url: str) -> tuple[str, dict[str, str]] | None:
        """Play ``document``; the next (url, params) to fetch, or None when the call ends."""
        for verb in document:
            if verb.tag == "Say":
                self.note("say", verb.get("language") or "", (verb.text or "").strip())
            elif verb.tag == "Gather":
                for inner in verb:
                    if inner.tag == "Say":
                        self.note("say", inner.get("language") or "", (inner.text or "").strip())
                if self.digits:
                    digit = self.digits.pop(0)
                    self.note("digits", digit)
                    return urljoin(url, verb.get("action") or url), {"Digits": digit}
            elif verb.tag == "Dial":
                self.note("dial", (verb.text or "").strip())
                return None
            elif verb.tag == "Redirect":
                return urljoin(url, (verb.text or "").strip()), {}
            elif verb.tag == "Hangup":
                return None
        return None


async def place_call(ctx: FakeContext, sid: str) -> None:
    """Play call ``sid`` to its end and post the signed status callback."""
    resource = ctx.state.get_twilio_call(sid)
    if resource is None:
        return
    form, to = resource["_form"], resource["to"]
    outcome = ctx.config.twilio_call_answers.get(to, "human")
    started = dt.datetime.now(dt.UTC)
    ctx.state.update_twilio_call(
        sid,
        status="ringing",
        start_time=rfc2822(started),
        _started_at=started,
        answered_by=answered_by(outcome, form.get("MachineDetection")),
    )
    final = outcome if outcome in ("no-answer", "busy", "failed") else "completed"
    if final == "completed":
        ctx.state.update_twilio_call(sid, status="in-progress")
        if form.get("Url"):
            await _Player(ctx, sid, ctx.config.twilio_call_digits.get(to, "")).play(form["Url"])
    ended = dt.datetime.now(dt.UTC)
    duration = str(int((ended - started).total_seconds())) if final == "completed" else "0"
    done = ctx.state.update_twilio_call(
        sid, status=final, end_time=rfc2822(ended), duration=duration, date_updated=rfc2822(ended)
    )
    url = form.get("StatusCallback")
    if done is None or not (url and ctx.config.callbacks):
        return
    params = {
        **call_params(done, final),
        "CallDuration": duration,
        "Timestamp": rfc2822(ended),
        "CallbackSource": "call-progress-events",
        "SequenceNumber": "0",
    }
    await ctx.post(
        "twilio_status", url, form=params, headers=sign(ctx.config.twilio_auth_token, url, params)
    )


def _book_call(ctx: FakeContext, form: dict[str, str], sid: str, resource: dict[str, Any]) -> None:
    ctx.state.put_twilio_call(resource)
    reminder = parse_qs(urlsplit(form.get("Url", "")).query).get("reminder_id", [None])[0]
    ctx.state.accept([Received("twilio_call", sid, resource["to"], form.get("Url", ""), reminder)])
    ctx.spawn(place_call(ctx, sid))


async def create_call(request: Request) -> Response:
    """POST Calls.json: 201 with the queued call, or Twilio's error JSON."""
    return await create_resource(request, "CA", new_call, _book_call)


async def fetch_call(request: Request) -> Response:
    """GET Calls/{Sid}.json: the call resource or 404 (20404)."""
    return await fetch_one(request, request.app.state.fakes.state.get_twilio_call)


async def list_calls(request: Request) -> Response:
    """GET Calls.json: filtered by To, From, Status, StartTime (=, <, >), paged, newest first."""
    return await list_all(
        request,
        lambda ctx: list_page(
            ctx.state.twilio_call_list(),
            request.url.path,
            dict(request.query_params),
            "calls",
            CALL_FILTERS,
            call_matches,
        ),
    )


routes = [
    Route(PREFIX + "/{account_sid}/Calls.json", create_call, methods=["POST"]),
    Route(PREFIX + "/{account_sid}/Calls.json", list_calls, methods=["GET"]),
    Route(PREFIX + "/{account_sid}/Calls/{sid}.json", fetch_call, methods=["GET"]),
]

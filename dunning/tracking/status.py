"""Pure rules of tracking: provider event mapping and SMS keywords (the status order is
ReminderStatus's, in dunning.core.status)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from dunning.core.status import Outcome
from dunning.core.status import ReminderStatus as S

_SENDGRID: dict[str, Outcome] = {
    "processed": Outcome(S.SENT),
    "deferred": Outcome(None),
    "delivered": Outcome(S.DELIVERED),
    "open": Outcome(S.OPENED),
    "click": Outcome(S.CLICKED),
    "dropped": Outcome(S.FAILED_PERMANENT, reason="dropped"),
    "spamreport": Outcome(None, opt_out="email", reason="spam report"),
    "unsubscribe": Outcome(None, opt_out="email", reason="unsubscribed"),
    "group_unsubscribe": Outcome(None, opt_out="email", reason="unsubscribed"),
    "group_resubscribe": Outcome(None),
}


def sendgrid_outcome(event: dict[str, object]) -> Outcome | None:
    """The outcome of one SendGrid event, None for an event type we do not track."""
    kind = str(event.get("event", ""))
    if kind == "bounce":
        # SendGrid marks soft bounces type=blocked (or bounce_classification); only a hard
        # bounce proves the address is dead.
        soft = event.get("type") == "blocked"
        reason = str(event.get("reason") or ("soft bounce" if soft else "hard bounce"))[:200]
        return Outcome(S.BOUNCED, invalid_address=not soft, reason=reason)
    if kind == "dropped":
        return Outcome(S.FAILED_PERMANENT, reason=str(event.get("reason") or "dropped")[:200])
    return _SENDGRID.get(kind)


# Twilio error codes that mean the recipient opted out / the number cannot take SMS.
TWILIO_OPT_OUT_CODES = {"21610"}
_TWILIO: dict[str, Outcome] = {
    "accepted": Outcome(None),
    "scheduled": Outcome(None),
    "queued": Outcome(None),
    "sending": Outcome(None),
    "sent": Outcome(S.SENT),
    "delivered": Outcome(S.DELIVERED),
    "read": Outcome(S.DELIVERED),
    "undelivered": Outcome(S.UNDELIVERED),
    "failed": Outcome(S.FAILED_PERMANENT),
    "canceled": Outcome(S.FAILED_PERMANENT, reason="canceled"),
}

#: Twilio statuses after which a message will not change any more (polling stops).
TWILIO_FINAL = {"delivered", "read", "undelivered", "failed", "canceled"}


def twilio_outcome(status: str, error_code: str | None) -> Outcome | None:
    """The outcome of a Twilio message status, None for a status we do not know."""
    base = _TWILIO.get(status.lower())
    if base is None or base.status not in (S.UNDELIVERED, S.FAILED_PERMANENT):
        return base
    reason = f"twilio {status.lower()}" + (f" (error {error_code})" if error_code else "")
    opt_out = "sms" if error_code in TWILIO_OPT_OUT_CODES else None
    return Outcome(base.status, opt_out=opt_out, reason=reason)


#: A finished call's status (Twilio CallStatus) -> (call_outcome, ledger outcome). A call
#: answered by a machine (AnsweredBy machine_*/fax) is a "voicemail" (call_outcome_for).
_CALLS: dict[str, tuple[str, Outcome]] = {
    "completed": ("completed", Outcome(S.DELIVERED)),
    "no-answer": ("no-answer", Outcome(S.UNDELIVERED, reason="call not answered")),
    "busy": ("busy", Outcome(S.UNDELIVERED, reason="line busy")),
    "failed": ("failed", Outcome(S.FAILED_PERMANENT, reason="call failed")),
    "canceled": ("failed", Outcome(S.FAILED_PERMANENT, reason="call canceled")),
}
#: Call statuses on the way to the end: recorded, nothing changes.
CALL_PROGRESS = {"queued", "initiated", "ringing", "in-progress"}


def call_outcome_for(status: str, answered_by: str | None) -> tuple[str, Outcome] | None:
    """(call outcome, ledger outcome) of a call's final status (Twilio CallStatus, with the
    AnsweredBy of answering-machine detection); None for a status on the way there."""
    found = _CALLS.get(status.lower())
    if found is None:
        return None
    if found[0] == "completed" and (answered_by or "").startswith(("machine", "fax")):
        return "voicemail", Outcome(S.DELIVERED, reason="voicemail left")
    return found


# Twilio's default opt-out and opt-in keywords (whole message, case-insensitive).
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
START_WORDS = {"START", "UNSTOP", "YES"}
_PAID = re.compile(r"^PAID\b[\s:,-]*(?P<date>.*)$", re.IGNORECASE)
_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%y", "%d/%m/%y")


@dataclass(frozen=True)
class Keyword:
    """The meaning of an inbound SMS: stop, start, paid (with an optional date) or None."""

    keyword: str | None
    paid_on: dt.date | None = None
    paid_text: str | None = None


def parse_keyword(body: str | None) -> Keyword:
    """The keyword an inbound SMS body carries (a whole-message match, as Twilio does)."""
    text = (body or "").strip().strip(".!").strip()
    upper = text.upper()
    if upper in STOP_WORDS:
        return Keyword("stop")
    if upper in START_WORDS:
        return Keyword("start")
    match = _PAID.match(text)
    if not match:
        return Keyword(None)
    rest = match.group("date").strip()
    return Keyword("paid", paid_on=parse_date(rest), paid_text=rest or None)


def parse_date(text: str) -> dt.date | None:
    """``text`` as a date in one of the common numeric formats, else None."""
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None

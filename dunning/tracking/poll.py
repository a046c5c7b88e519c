"""Poll Twilio for SMS reminders still without a final status (for hosts without webhooks)."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import Engine, func, select
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from dunning.channels.twilio import TWILIO_API, BaseUrlHttpClient
from dunning.channels.twilio_config import TwilioConfig, require_twilio
from dunning.core.status import NOT_FINAL
from dunning.db import session_scope
from dunning.db.models import Reminder, utcnow
from dunning.tracking.apply import Ignored, TrackingSummary, apply_twilio_status

log = logging.getLogger("dunning.tracking")


def twilio_client(config: TwilioConfig | None = None) -> Client:
    """A Twilio SDK client for ``config`` (default: the one Twilio configuration, see
    ``dunning.channels.twilio_config``); ConfigError when no account is configured."""
    c = config or require_twilio(purpose="polling Twilio (or run with poll_twilio=False)")
    http = BaseUrlHttpClient(c.base_url or TWILIO_API)
    return Client(c.account_sid, c.auth_token.get_secret_value(), http_client=http)


def stale_sms(
    engine: Engine, older_than: dt.timedelta, now: dt.datetime | None = None, limit: int = 500
) -> list[str]:
    """MessageSids of SMS reminders sent more than ``older_than`` ago with no final status."""
    cutoff = (now or utcnow()) - older_than
    stmt = (
        select(Reminder.provider_message_id)
        .where(
            Reminder.channel == "sms",
            Reminder.status.in_(sorted(NOT_FINAL)),
            Reminder.provider_message_id.is_not(None),
            func.coalesce(Reminder.sent_at, Reminder.claimed_at) <= cutoff,
        )
        .order_by(Reminder.id)
        .limit(limit)
    )
    with session_scope(engine) as session:
        return [sid for sid in session.scalars(stmt) if sid]


def poll_twilio(
    engine: Engine, client: Client, older_than: dt.timedelta, now: dt.datetime | None = None
) -> TrackingSummary:
    """The summary of fetching each stale SMS from Twilio and applying its status."""
    summary = TrackingSummary()
    for sid in stale_sms(engine, older_than, now):
        try:
            message = client.messages(sid).fetch()
        except TwilioRestException as exc:
            log.warning("twilio poll of %s failed: HTTP %s code %s", sid, exc.status, exc.code)
            summary.add(["poll_error"])
            continue
        except TwilioException as exc:
            log.warning("twilio poll of %s failed: %s", sid, type(exc).__name__)
            summary.add(["poll_error"])
            continue
        status = str(message.status or "")
        code = str(message.error_code) if message.error_code else None
        at = message.date_updated or now or utcnow()
        try:
            with session_scope(engine) as session:
                summary.add(["polled", *apply_twilio_status(session, sid, status, code, at)])
        except Ignored:
            summary.add(["polled"])
    return summary

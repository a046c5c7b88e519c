"""One-click unsubscribe (RFC 8058) at ``/unsubscribe/{token}``.

Every reminder e-mail carries ``List-Unsubscribe: <{DUNNING_UNSUBSCRIBE_BASE_URL}/{token}>`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``. A mailbox provider (Gmail, Yahoo) then
POSTs ``List-Unsubscribe=One-Click`` to that URL, and the customer is opted out of reminder
e-mail at once. A GET of the URL (the footer link) shows a confirm page in the customer's
language whose button POSTs the same body: a GET alone never unsubscribes, because link
scanners follow every link in a message (RFC 8058 section 3.2). A token whose HMAC does not
verify (``dunning.render.verify_unsubscribe_token``) gets 404 and changes nothing.
"""

from __future__ import annotations

import email.parser
import email.policy
import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from dunning.db import session_scope
from dunning.db.models import Customer, Reminder, utcnow
from dunning.ledger.events import opt_out, record_event
from dunning.render import locale_candidates, render_template, template_exists
from dunning.render import verify_unsubscribe_token as verify_token

#: The only body RFC 8058 section 3.1 defines for the one-click POST.
ONE_CLICK = ("List-Unsubscribe", "One-Click")
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Target:
    """Whom a verified token unsubscribes: the reminder's customer and their language."""

    reminder_id: int
    customer_id: str
    locale: str
    opted_out: bool


def find_target(engine: Engine, token: str, secret: str) -> Target | None:
    """The customer ``token`` points at, None when its HMAC is wrong or the reminder is gone."""
    reminder_id = verify_token(token, secret)
    if reminder_id is None:
        return None
    with session_scope(engine) as session:
        reminder = session.get(Reminder, reminder_id)
        if reminder is None:
            return None
        customer = session.get_one(Customer, reminder.customer_id)
        return Target(reminder_id, customer.customer_id, customer.locale, customer.email_opt_out)


def unsubscribe(engine: Engine, target: Target) -> list[str]:
    """Opt ``target``'s customer out of reminder e-mail now; the kinds of change made.

    The customer gets ``email_opt_out``; their planned or claimed e-mail reminders become
    ``skipped (email_opt_out)`` (the claim re-checks the flag too). A delivery event
    ``unsubscribe`` (provider ``one-click``) is recorded once, for the timeline.
    """
    now = utcnow()
    with session_scope(engine) as session:
        reminder = session.get_one(Reminder, target.reminder_id)
        record_event(
            session,
            reminder,
            "one-click",
            f"unsubscribe:{target.reminder_id}",
            "unsubscribe",
            now,
            detail="List-Unsubscribe=One-Click",
        )
        return opt_out(session, [target.customer_id], "email", opted_out=True)


def is_one_click(content_type: str, body: bytes) -> bool:
    """Whether ``body`` carries ``List-Unsubscribe=One-Click`` as a form field.

    RFC 8058 allows application/x-www-form-urlencoded and multipart/form-data.
    """
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        try:
            fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return False
        return ONE_CLICK in fields
    if media == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if name == ONE_CLICK[0] and isinstance(payload, bytes):
                if payload.decode("utf-8", "replace").strip() == ONE_CLICK[1]:
                    return True
    return False


def page(directory: Path, locale: str, state: str) -> str:
    """The unsubscribe page in the best language for ``locale``; ``state`` is ``confirm``
    (with the button) or ``done``."""
    for lang in locale_candidates(locale):
        name = f"_unsubscribe/page.{lang}.html"
        if template_exists(directory, name):
            return render_template(name, {"state": state, "language": lang}, directory)
    return f"<!doctype html><p>{html.escape(state)}</p>"


def endpoint_for(
    get_engine: Callable[[], Engine], secret: str, directory: Path
) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint serving GET (confirm page) and POST (one-click) at
    ``/unsubscribe/{token}``; ``get_engine`` returns the database engine."""
    not_found = Response("unknown or invalid unsubscribe link\n", 404, media_type="text/plain")

    async def endpoint(request: Request) -> Response:
        token = str(request.path_params["token"])
        target = await run_in_threadpool(find_target, get_engine(), token, secret)
        if target is None:
            return not_found
        if request.method == "GET":
            state = "done" if target.opted_out else "confirm"
            return HTMLResponse(page(directory, target.locale, state))
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return Response("body too large\n", 413, media_type="text/plain")
        if not is_one_click(request.headers.get("content-type", ""), body):
            return Response(
                "expected the body List-Unsubscribe=One-Click (RFC 8058)\n",
                400,
                media_type="text/plain",
            )
        await run_in_threadpool(unsubscribe, get_engine(), target)
        return HTMLResponse(page(directory, target.locale, "done"))

    return endpoint

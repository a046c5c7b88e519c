"""Outbound subscribers: validation, add/list/remove, the environment's subscriber and replay.

A subscriber URL must be https, except loopback addresses (127.0.0.0/8, ::1, localhost) for
local relays and tests. Secrets are Standard Webhooks secrets: ``whsec_`` + base64 of 24 to
64 random bytes (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/
standard-webhooks.md#signature-scheme). A secret is never printed: :func:`mask_secret`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.orm import Session

from dunning.config import OutboundSettings
from dunning.db import session_scope
from dunning.db.models import OutboundDelivery, OutboundEvent, OutboundSubscriber, utcnow
from dunning.errors import ConfigError
from dunning.ledger.events import rowcount
from dunning.ledger.outbox import EVENT_TYPES


def validate_url(url: str, name: str = "URL") -> str:
    """``url`` stripped when it is https or http(s) to a loopback host; else ValueError
    naming ``name`` and the fix."""
    url = url.strip()
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"{name} {url!r} is not an http(s) URL; use e.g. https://example.com/hook")
    if parts.scheme == "https" or _loopback(host):
        return url
    raise ValueError(
        f"{name} {url!r} must use https (plain http is allowed only for loopback addresses "
        "such as 127.0.0.1 or localhost)"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def validate_secret(secret: str, name: str = "--secret") -> str:
    """``secret`` when it is a Standard Webhooks secret (``whsec_`` + base64 of 24..64
    bytes); else ValueError naming ``name`` (the message never contains the secret)."""
    secret = secret.strip()
    if not secret.startswith("whsec_"):
        raise ValueError(f"{name} must start with whsec_ (a Standard Webhooks secret)")
    try:
        raw = base64.b64decode(secret[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} is not whsec_ followed by base64") from None
    if not 24 <= len(raw) <= 64:
        raise ValueError(f"{name} must encode 24 to 64 random bytes, it encodes {len(raw)}")
    return secret


def parse_types(text: str | None) -> list[str]:
    """Event types from a comma-separated list (``*`` or empty: all); ValueError names an
    unknown one."""
    if not text or text.strip() == "*":
        return list(EVENT_TYPES)
    types = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise ValueError(
            f"--events: unknown type(s) {unknown}; choose from {', '.join(EVENT_TYPES)}"
        )
    return list(dict.fromkeys(types))


def mask_secret(secret: str | None) -> str:
    """``whsec_…`` with the last 4 characters, never the secret itself."""
    return f"whsec_…{secret[-4:]}" if secret else "-"


def mask_url(url: str) -> str:
    """The URL's scheme, host and port; its path is left out (Zapier-style URLs carry a
    token in the path)."""
    if url.startswith("internal:"):
        return url  # a CRM or Xero-notes target (docs/outbound.md): no token in it
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.path not in ("", "/") else url


def add(engine: Engine, url: str, events: list[str], secret: str) -> int:
    """The id of a new subscriber; it receives events emitted from now on (``replay`` for
    older ones). Raises ValueError for a bad URL or secret."""
    url, secret = validate_url(url), validate_secret(secret)
    with session_scope(engine) as session:
        last = session.scalar(select(func.coalesce(func.max(OutboundEvent.id), 0)))
        sub = OutboundSubscriber(
            url=url,
            events=events,
            secret=secret,
            source="cli",
            cursor=int(last or 0),
            created_at=utcnow(),
        )
        session.add(sub)
        session.flush()
        return sub.id


def remove(engine: Engine, subscriber_id: int) -> bool:
    """Whether subscriber ``subscriber_id`` existed (its deliveries go with it)."""
    with session_scope(engine) as session:
        session.execute(
            delete(OutboundDelivery).where(OutboundDelivery.subscriber_id == subscriber_id)
        )
        return bool(
            rowcount(
                session.execute(
                    delete(OutboundSubscriber).where(OutboundSubscriber.id == subscriber_id)
                )
            )
        )


def sync_env(session: Session, settings: OutboundSettings) -> OutboundSubscriber | None:
    """The subscriber of DUNNING_OUTBOUND_WEBHOOK_URL (created on first use with every event
    type and every event already in the outbox), or None when unset. Raises ConfigError
    naming the variable when the URL or secret is invalid."""
    if not settings.webhook_url:
        return None
    try:
        url = validate_url(settings.webhook_url, "DUNNING_OUTBOUND_WEBHOOK_URL")
        validate_secret(settings.secret_value or "", "DUNNING_OUTBOUND_WEBHOOK_SECRET")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    sub = session.scalar(select(OutboundSubscriber).where(OutboundSubscriber.source == "env"))
    if sub is None:
        sub = OutboundSubscriber(
            url=url,
            events=list(EVENT_TYPES),
            secret=None,
            source="env",
            cursor=0,
            created_at=utcnow(),
        )
        session.add(sub)
        session.flush()
    elif sub.url != url:
        sub.url = url
    return sub


def listing(engine: Engine, settings: OutboundSettings) -> list[dict[str, Any]]:
    """Every subscriber with its delivery counts (pending, delivered, dead); URL path and
    secret masked."""
    with session_scope(engine) as session:
        sync_env(session, settings)
        counts: dict[int, dict[str, int]] = {}
        for sid, status, n in session.execute(
            select(OutboundDelivery.subscriber_id, OutboundDelivery.status, func.count()).group_by(
                OutboundDelivery.subscriber_id, OutboundDelivery.status
            )
        ):
            counts.setdefault(sid, {})[status] = n
        return [
            {
                "id": s.id,
                "url": mask_url(s.url),
                "events": s.events,
                "source": s.source,
                "secret": mask_secret(s.secret if s.source != "env" else settings.secret_value),
                "pending": counts.get(s.id, {}).get("pending", 0),
                "delivered": counts.get(s.id, {}).get("delivered", 0),
                "dead": counts.get(s.id, {}).get("dead", 0),
            }
            for s in session.scalars(select(OutboundSubscriber).order_by(OutboundSubscriber.id))
        ]


def replay(engine: Engine, since: dt.datetime, settings: OutboundSettings) -> int:
    """Re-queue every event at or after ``since`` (UTC) for every subscriber taking its type:
    missing deliveries are added, existing ones (delivered or dead) become pending with their
    attempts reset. Returns the number of deliveries queued."""
    now = utcnow()
    queued = 0
    with session_scope(engine) as session:
        sync_env(session, settings)
        subs = list(session.scalars(select(OutboundSubscriber)))
        events = list(
            session.execute(
                select(OutboundEvent.id, OutboundEvent.type).where(
                    OutboundEvent.occurred_at >= since
                )
            )
        )
        for sub in subs:
            ids = [eid for eid, typ in events if typ in sub.events and eid <= sub.cursor]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                have = set(
                    session.scalars(
                        select(OutboundDelivery.event_id).where(
                            OutboundDelivery.subscriber_id == sub.id,
                            OutboundDelivery.event_id.in_(chunk),
                        )
                    )
                )
                session.execute(
                    update(OutboundDelivery)
                    .where(
                        OutboundDelivery.subscriber_id == sub.id,
                        OutboundDelivery.event_id.in_(chunk),
                    )
                    .values(status="pending", attempts=0, next_attempt_at=now, last_error=None)
                )
                missing = [e for e in chunk if e not in have]
                if missing:
                    session.execute(
                        insert(OutboundDelivery),
                        [
                            {
                                "event_id": e,
                                "subscriber_id": sub.id,
                                "status": "pending",
                                "attempts": 0,
                                "next_attempt_at": now,
                            }
                            for e in missing
                        ],
                    )
                queued += len(chunk)
    return queued

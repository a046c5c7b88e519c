"""Delivering the outbox: fan-out to subscribers, signed POSTs, retries, dead letter.

Each delivery (one event for one subscriber) is POSTed with the Standard Webhooks headers
``webhook-id`` (the event id, the same on every attempt, for the receiver's dedupe),
``webhook-timestamp`` and ``webhook-signature``, signed afresh on every attempt by the
``standardwebhooks`` package. A 2xx answer delivers it. A 5xx, a 429, a timeout or a refused
connection is retried with exponential backoff (``backoff_seconds`` × 2^(attempt−1), at most
6 hours, honouring a longer ``Retry-After``); any other answer, or ``max_attempts`` failed
attempts, moves it to the dead letter state (``dunning subscribers list`` shows it;
``replay --since`` re-queues it). At least once: a crash after the POST re-sends it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx
from sqlalchemy import Engine, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from dunning.config import OutboundSettings
from dunning.db import session_scope
from dunning.db.models import (
    OutboundDelivery,
    OutboundEvent,
    OutboundSubscriber,
    UTCDateTime,
    utcnow,
)
from dunning.errors import ConfigError
from dunning.ledger.events import rowcount
from dunning.outbound.subscribers import mask_url, sync_env

if TYPE_CHECKING:
    from dunning.outbound.activities import Target

MAX_DELAY = dt.timedelta(hours=6)
BATCH = 200


class Due(NamedTuple):
    """One delivery taken for an attempt."""

    delivery_id: int
    attempts: int
    subscriber_id: int
    url: str
    secret: str
    event_id: str
    type: str
    payload: dict[str, Any]


@dataclass
class DeliveryReport:
    """What one pass did: counts by outcome and the dead letters it made (masked URLs)."""

    counts: Counter[str] = field(default_factory=Counter)
    dead: list[dict[str, object]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """Counts (queued, delivered, retry, dead) and the new dead letters."""
        return {
            **{k: self.counts.get(k, 0) for k in ("queued", "delivered", "retry", "dead")},
            "dead_letters": self.dead,
        }


def fan_out(
    session: Session, settings: OutboundSettings, targets: Mapping[str, Target] | None = None
) -> int:
    """Queue the events each subscriber has not seen yet (id above its cursor, a type it
    takes); returns how many deliveries were added. ``targets`` (CRM, Xero notes) get an
    internal subscriber each (created on first use, taking every event already in the
    outbox)."""
    sync_env(session, settings)
    sync_internal(session, targets or {})
    top = int(session.scalar(select(func.coalesce(func.max(OutboundEvent.id), 0))) or 0)
    ins = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    added = 0
    now = utcnow()
    for sub in session.scalars(select(OutboundSubscriber).where(OutboundSubscriber.cursor < top)):
        source = select(
            OutboundEvent.id,
            literal(sub.id),
            literal("pending"),
            literal(0),
            literal(now, UTCDateTime()),
        ).where(
            OutboundEvent.id > sub.cursor,
            OutboundEvent.id <= top,
            OutboundEvent.type.in_(sub.events),
        )
        stmt = (
            ins(OutboundDelivery)
            .from_select(
                ["event_id", "subscriber_id", "status", "attempts", "next_attempt_at"], source
            )
            .on_conflict_do_nothing(index_elements=["event_id", "subscriber_id"])
            .returning(OutboundDelivery.id)
        )
        # RETURNING, not rowcount: psycopg reports -1 for INSERT ... SELECT ... ON CONFLICT.
        added += len(session.execute(stmt).all())
        sub.cursor = top
    return added


def sync_internal(session: Session, targets: Mapping[str, Target]) -> None:
    """The internal subscriber (``source='internal'``, URL ``internal:<name>``) of each
    configured target, created with the target's event types and cursor 0."""
    from dunning.outbound.activities import INTERNAL_PREFIX

    have = set(
        session.scalars(
            select(OutboundSubscriber.url).where(OutboundSubscriber.source == "internal")
        )
    )
    for name, target in targets.items():
        if INTERNAL_PREFIX + name not in have:
            session.add(
                OutboundSubscriber(
                    url=INTERNAL_PREFIX + name,
                    events=list(target.events),
                    secret=None,
                    source="internal",
                    cursor=0,
                    created_at=utcnow(),
                )
            )
    session.flush()


def backoff(attempts: int, settings: OutboundSettings, retry_after: str | None) -> dt.timedelta:
    """The wait before attempt ``attempts + 1``: exponential, capped, at least Retry-After."""
    delay = dt.timedelta(seconds=settings.backoff_seconds * 2 ** max(attempts - 1, 0))
    if retry_after and retry_after.strip().isdigit():
        delay = max(delay, dt.timedelta(seconds=int(retry_after)))
    return min(delay, MAX_DELAY)


def _secret(sub: OutboundSubscriber, settings: OutboundSettings) -> str:
    if sub.source == "internal":
        return ""
    secret = sub.secret if sub.source != "env" else settings.secret_value
    if not secret:
        raise ConfigError(
            "DUNNING_OUTBOUND_WEBHOOK_SECRET is not set; set it to the receiver's whsec_ secret"
        )
    return secret


def send_one(
    client: httpx.Client, url: str, secret: str, event_id: str, body: str
) -> tuple[str, str | None, str | None]:
    """POST one signed event: ``(outcome, error, retry_after)`` with outcome ``delivered``,
    ``retry`` (5xx, 429, timeout, connection error) or ``dead`` (any other answer)."""
    now = utcnow()
    signature = Webhook(secret).sign(event_id, now, body)
    headers = {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    try:
        resp = client.post(url, content=body.encode(), headers=headers)
    except httpx.TimeoutException:
        return "retry", "timeout", None
    except httpx.TransportError as exc:
        return "retry", f"connection error: {type(exc).__name__}", None
    if 200 <= resp.status_code < 300:
        return "delivered", None, None
    error = f"HTTP {resp.status_code}"
    if resp.status_code >= 500 or resp.status_code == 429:
        return "retry", error, resp.headers.get("retry-after")
    return "dead", error, None


def deliver_due(
    engine: Engine,
    settings: OutboundSettings,
    *,
    limit: int | None = None,
    client: httpx.Client | None = None,
    targets: Mapping[str, Target] | None = None,
) -> DeliveryReport:
    """Fan out new events, then attempt every due delivery once (oldest event first).

    A delivery is taken by moving its ``next_attempt_at`` past the request timeout before
    the POST, so a second pass running at the same time skips it. ``targets`` (default: the
    configured CRM targets and Xero notes, ``dunning.outbound.targets.load_targets``)
    are internal subscribers: their deliveries call the provider instead of POSTing. Raises
    ConfigError when the environment's subscriber is set without a valid secret, or the CRM
    file or sources.toml is invalid.
    """
    from dunning.outbound.activities import INTERNAL_PREFIX, deliver
    from dunning.outbound.targets import load_targets

    if targets is None:
        targets = load_targets()
    report = DeliveryReport()
    with session_scope(engine) as session:
        report.counts["queued"] = fan_out(session, settings, targets)
    own = client is None
    http = client or httpx.Client(timeout=settings.timeout_seconds, follow_redirects=False)
    # Only deliveries due when the pass started: a retry due again at once (no backoff) waits
    # for the next pass, so each pass makes at most one attempt per delivery.
    started = utcnow()
    try:
        done = 0
        while limit is None or done < limit:
            batch = _take(
                engine,
                settings,
                started,
                BATCH if limit is None else min(BATCH, limit - done),
                [INTERNAL_PREFIX + name for name in targets],
            )
            if not batch:
                break
            for due in batch:
                if due.url.startswith(INTERNAL_PREFIX):
                    target = targets[due.url[len(INTERNAL_PREFIX) :]]
                    outcome, error, retry_after = deliver(engine, target, due.type, due.payload)
                else:
                    body = json.dumps(due.payload, separators=(",", ":"))
                    outcome, error, retry_after = send_one(
                        http, due.url, due.secret, due.event_id, body
                    )
                attempts = due.attempts + 1
                if outcome == "retry" and attempts >= settings.max_attempts:
                    outcome = "dead"
                _finish(
                    engine,
                    due.delivery_id,
                    outcome,
                    attempts,
                    error,
                    backoff(attempts, settings, retry_after),
                )
                report.counts[outcome] += 1
                if outcome == "dead":
                    report.dead.append(
                        {
                            "subscriber_id": due.subscriber_id,
                            "url": mask_url(due.url),
                            "event_id": due.event_id,
                            "type": due.type,
                            "attempts": attempts,
                            "error": error,
                        }
                    )
            done += len(batch)
    finally:
        if own:
            http.close()
    return report


def _take(
    engine: Engine,
    settings: OutboundSettings,
    started: dt.datetime,
    size: int,
    internal: list[str],
) -> list[Due]:
    lease = utcnow() + dt.timedelta(seconds=settings.timeout_seconds * 3 + 60)
    taken: list[Due] = []
    with session_scope(engine) as session:
        env = sync_env(session, settings)
        stmt = (
            select(
                OutboundDelivery.id,
                OutboundDelivery.attempts,
                OutboundDelivery.next_attempt_at,
                OutboundSubscriber,
                OutboundEvent.event_id,
                OutboundEvent.type,
                OutboundEvent.payload,
            )
            .join(OutboundSubscriber, OutboundSubscriber.id == OutboundDelivery.subscriber_id)
            .join(OutboundEvent, OutboundEvent.id == OutboundDelivery.event_id)
            .where(
                OutboundDelivery.status == "pending", OutboundDelivery.next_attempt_at <= started
            )
            .order_by(OutboundDelivery.event_id, OutboundDelivery.id)
            .limit(size)
        )
        if env is None:
            # DUNNING_OUTBOUND_WEBHOOK_URL was unset: its deliveries wait for it to return.
            stmt = stmt.where(OutboundSubscriber.source != "env")
        # An internal target no longer configured: its deliveries wait for it to return.
        stmt = stmt.where(
            or_(OutboundSubscriber.source != "internal", OutboundSubscriber.url.in_(internal))
        )
        for did, attempts, due, sub, event_id, etype, payload in session.execute(stmt).all():
            won = session.execute(
                update(OutboundDelivery)
                .where(
                    OutboundDelivery.id == did,
                    OutboundDelivery.next_attempt_at == due,
                    OutboundDelivery.status == "pending",
                )
                .values(next_attempt_at=lease)
            )
            if rowcount(won):
                taken.append(
                    Due(
                        did,
                        attempts,
                        sub.id,
                        sub.url,
                        _secret(sub, settings),
                        event_id,
                        etype,
                        payload,
                    )
                )
    return taken


def _finish(
    engine: Engine,
    delivery_id: int,
    outcome: str,
    attempts: int,
    error: str | None,
    delay: dt.timedelta,
) -> None:
    now = utcnow()
    values: dict[str, object] = {"attempts": attempts, "last_error": error}
    if outcome == "delivered":
        values.update(status="delivered", delivered_at=now, next_attempt_at=None)
    elif outcome == "dead":
        values.update(status="dead", next_attempt_at=None)
    else:
        values.update(next_attempt_at=now + delay)
    with engine.begin() as conn:
        conn.execute(
            update(OutboundDelivery).where(OutboundDelivery.id == delivery_id).values(values)
        )

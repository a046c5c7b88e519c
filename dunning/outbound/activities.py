"""CRM activity and accounting notes: outbound events written into HubSpot, Salesforce and
Xero (docs/outbound.md, "CRM activity and Xero history notes").

Each configured target is an *internal subscriber* of the outbox (``outbound_subscribers``
with ``source='internal'`` and the URL ``internal:<target>``): the same fan-out, retries with
backoff, dead letters and ``dunning subscribers replay`` as a webhook subscriber, but a
delivery calls the provider's SDK instead of POSTing. Delivery is at least once; the table
``outbound_activities`` (one row per target and ``reminder:<id>`` / ``reply:<event id>``)
makes it exactly once in effect: a second run for the same as-of, a replay or a repeated
delivery creates nothing new.

Targets:

- ``hubspot`` and ``salesforce``: the ``[hubspot]`` / ``[salesforce]`` tables of the CRM
  file (``DUNNING_CRM_PATH``, default ``crm.toml``); secrets come from environment variables
  (``NAME_env``) or Prefect Secret blocks (``NAME_block``), never from the file.
- ``xero``: on when sources.toml has a source of kind ``xero`` (unless its ``history_notes``
  is ``"off"``); notes go on the invoices that source owns.

Only ids, the stage, the channel, the invoice number and the balance leave: never a message
body, and the customer's e-mail address only as the CRM search filter that finds the contact.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from dunning.config import get_settings
from dunning.db import session_scope
from dunning.db.models import Customer, Invoice, OutboundActivity, Reminder, utcnow
from dunning.errors import ConfigError

#: The event types CRM targets log; Xero notes only sent reminders.
CRM_EVENTS = ("reminder.sent", "reply.received")
XERO_EVENTS = ("reminder.sent",)
#: The URL of an internal subscriber: ``internal:<target>``.
INTERNAL_PREFIX = "internal:"

_ALLOWED = {
    "hubspot": {
        "access_token_env",
        "access_token_block",
        "client_id_env",
        "client_secret_env",
        "client_secret_block",
        "refresh_token_env",
        "refresh_token_block",
        "api_base",
    },
    "salesforce": {
        "username_env",
        "password_env",
        "password_block",
        "security_token_env",
        "security_token_block",
        "consumer_key_env",
        "consumer_secret_env",
        "consumer_secret_block",
        "domain",
        "version",
    },
}


class MissingContact(Exception):
    """The target has no contact with the customer's e-mail address (or the customer has
    none): reported as a dead letter, never retried by itself (``replay`` re-queues it)."""


class RetryLater(Exception):
    """A transient failure (rate limit kept answering, server error, timeout): the delivery
    is retried with the outbox's backoff, at least ``retry_after`` seconds later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Refused(Exception):
    """A permanent refusal (bad request, credentials refused after a refresh): dead letter;
    the message names the setting to fix, never a secret."""


@dataclass(frozen=True)
class Retry:
    """What a CRM target's ``classify`` asks of ``call_with_retries`` after a failed call:
    sleep ``wait`` seconds and call again, or (``renew``) get fresh credentials and call again."""

    wait: float = 0.0
    renew: bool = False


def call_with_retries(
    what: Callable[[Any], Any],
    client: Callable[[bool], Any],
    classify: Callable[[Exception, bool, int], Retry],
    *,
    sleep: Callable[[float], None],
    max_calls: int | None = None,
    exhausted: Callable[[], Exception] | None = None,
) -> Any:
    """``what(client(renew))`` until it returns: the one retry loop of the CRM targets.

    After each failure ``classify(error, renewed, waits)`` (``renewed``: credentials were
    renewed once already; ``waits``: how many waits so far) raises the error the delivery
    should see (RetryLater, Refused, or the error itself) or returns a ``Retry``: a renewal
    (``client(True)`` on the next call) or a wait of ``Retry.wait`` seconds through
    ``sleep``. ``max_calls``: at most that many calls, then ``exhausted()`` is raised (None:
    no limit; ``classify`` bounds the waits).
    """
    renewed = renew = False
    waits = calls = 0
    while max_calls is None or calls < max_calls:
        calls += 1
        current = client(renew)
        renew = False
        try:
            return what(current)
        except Exception as exc:  # noqa: BLE001 - classify decides what each error means
            step = classify(exc, renewed, waits)
        if step.renew:
            renewed = renew = True
            continue
        sleep(step.wait)
        waits += 1
    assert exhausted is not None, "max_calls needs exhausted"
    raise exhausted()


@dataclass(frozen=True)
class Facts:
    """What one activity says: the ids, stage, channel, invoice number and balance (a
    decimal in ``currency``, not minor units), the event time (UTC), and where to find the
    contact (``email``) or the invoice (``invoice_source``, ``invoice_source_id``)."""

    kind: str  # "reminder" (reminder.sent) or "reply" (reply.received)
    key: str
    event_id: str
    at: dt.datetime
    reminder_id: int | None
    invoice_id: int | None
    customer_id: str | None
    stage: str | None
    channel: str | None
    invoice_number: str | None
    balance: Decimal | None
    currency: str | None
    email: str | None
    invoice_source: str | None
    invoice_source_id: str | None
    keyword: str | None = None

    def summary(self) -> str:
        """One line for the note: no body, no e-mail address, no phone number."""
        parts = []
        if self.stage:
            parts.append(f"stage {self.stage}")
        if self.channel:
            parts.append(f"channel {self.channel}")
        if self.invoice_number:
            parts.append(f"invoice {self.invoice_number}")
        if self.balance is not None:
            parts.append(f"balance {self.balance.normalize():f} {self.currency or ''}".rstrip())
        if self.kind == "reply" and self.keyword:
            parts.append(f"keyword {self.keyword}")
        if self.reminder_id is not None:
            parts.append(f"reminder {self.reminder_id}")
        title = "Payment reminder sent" if self.kind == "reminder" else "Customer replied"
        return f"{title} (dunning): " + ", ".join(parts)

    @property
    def subject(self) -> str:
        """A short title (a Salesforce Task subject)."""
        what = "Payment reminder" if self.kind == "reminder" else "Reminder reply"
        return f"{what} {self.stage or ''} {self.invoice_number or ''}".strip()[:255]


class Target(Protocol):
    """One external system: ``name``, the event types it takes, and ``create`` (returns the
    external id, raises MissingContact, RetryLater or Refused)."""

    name: str
    events: tuple[str, ...]

    def applies(self, facts: Facts) -> bool:
        """Whether this event concerns the target (Xero: invoices of its source)."""
        ...

    def create(self, facts: Facts) -> str:
        """Write the activity; its id in the target."""
        ...


def crm_path() -> Path:
    """The CRM file in force: ``DUNNING_CRM_PATH``, else ./crm.toml."""
    return get_settings().integrations.crm_file


@dataclass(frozen=True)
class CrmConfig:
    """One table of the CRM file: the target name and its settings."""

    name: str
    settings: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        """The setting ``key``, or ``default``."""
        return self.settings.get(key, default)

    def secret(self, key: str, default_env: str) -> str | None:
        """The secret ``key`` from the Prefect Secret block ``KEY_block`` names, else the
        variable ``KEY_env`` names (default ``default_env``); None when unset. ConfigError
        when ``KEY_env`` names an unset variable or the block cannot be loaded."""
        from dunning.sources.config import load_secret_block

        block = self.settings.get(f"{key}_block")
        if block:
            return load_secret_block(str(block), f"[{self.name}] {key}_block")
        env = self.settings.get(f"{key}_env")
        value = get_settings().integrations.variable(str(env or default_env))
        if env and not value:
            raise ConfigError(
                f"{crm_path()}: [{self.name}] {key}_env names the environment variable {env}, "
                f"which is not set; export {env}"
            )
        return value or None


def load_crm(path: Path | None = None) -> dict[str, CrmConfig]:
    """The ``[hubspot]`` and ``[salesforce]`` tables of the CRM file (none when the file is
    missing). ConfigError names the file, table and key of anything invalid; a secret
    written in the file itself is refused."""
    path = path or crm_path()
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    out: dict[str, CrmConfig] = {}
    for name, table in data.items():
        if name not in _ALLOWED:
            raise ConfigError(
                f"{path}: unknown table [{name}]; the CRM file takes [hubspot] and [salesforce]"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{name}] must be a table of settings")
        for key, value in table.items():
            if key not in _ALLOWED[name]:
                hint = (
                    f'; put the secret in an environment variable and write {key}_env = "VARIABLE"'
                    if f"{key}_env" in _ALLOWED[name]
                    else f"; allowed: {', '.join(sorted(_ALLOWED[name]))}"
                )
                raise ConfigError(f"{path}: [{name}] unknown key {key!r}{hint}")
            if not isinstance(value, str):
                raise ConfigError(f"{path}: [{name}] {key} must be a string")
        out[name] = CrmConfig(name, dict(table))
    return out


def facts_for(engine: Engine, event_type: str, payload: Mapping[str, Any]) -> Facts | None:
    """The facts of one outbox event (its payload plus the reminder, invoice and customer
    rows); None for a reminder.sent whose reminder no longer exists."""
    data = payload.get("data") or {}
    reminder_id = data.get("reminder_id")
    kind = "reminder" if event_type == "reminder.sent" else "reply"
    key = f"reminder:{reminder_id}" if kind == "reminder" else f"reply:{payload['id']}"
    with session_scope(engine) as session:
        reminder = session.get(Reminder, reminder_id) if reminder_id is not None else None
        if kind == "reminder" and reminder is None:
            return None
        invoice_id = data.get("invoice_id") or (reminder.invoice_id if reminder else None)
        invoice = session.get(Invoice, invoice_id) if invoice_id is not None else None
        customer_id = data.get("customer_id") or (reminder.customer_id if reminder else None)
        customer = session.get(Customer, customer_id) if customer_id else None
        balance = reminder.balance_due if reminder else None
        if balance is None and invoice is not None:
            from dunning.ledger.payments import balance as invoice_balance

            balance = invoice_balance(session, invoice)  # the balance now
        return Facts(
            kind=kind,
            key=key,
            event_id=str(payload["id"]),
            at=dt.datetime.fromisoformat(str(payload["timestamp"])),
            reminder_id=reminder_id,
            invoice_id=invoice_id,
            customer_id=customer_id,
            stage=data.get("stage") or (reminder.stage if reminder else None),
            channel=data.get("channel") or (reminder.channel if reminder else None),
            invoice_number=invoice.invoice_number if invoice else None,
            balance=balance,
            currency=(reminder.currency if reminder else None)
            or (invoice.currency if invoice else None),
            email=customer.email if customer else None,
            invoice_source=invoice.source if invoice else None,
            invoice_source_id=invoice.source_id if invoice else None,
            keyword=data.get("keyword"),
        )


def deliver(
    engine: Engine, target: Target, event_type: str, payload: Mapping[str, Any]
) -> tuple[str, str | None, str | None]:
    """Write one outbox event into ``target`` unless it already holds it: ``(outcome, error,
    retry_after)`` like a webhook POST (``delivered``, ``retry`` or ``dead``).

    A missing contact or reminder, or a permanent refusal, is ``dead`` with the reason (no
    personal data); a rate limit or server error that outlasted the target's own bounded
    retries is ``retry``. An event that does not concern the target (Xero: an invoice of
    another source) is ``delivered`` with nothing written.
    """
    facts = facts_for(engine, event_type, payload)
    if facts is None:
        return "dead", "the reminder no longer exists", None
    if not target.applies(facts):
        return "delivered", None, None
    with session_scope(engine) as session:
        done = session.scalar(
            select(OutboundActivity.external_id).where(
                OutboundActivity.target == target.name, OutboundActivity.key == facts.key
            )
        )
    if done is not None:
        return "delivered", None, None
    try:
        external_id = target.create(facts)
    except MissingContact as exc:
        return "dead", f"missing contact: {exc}"[:300], None
    except RetryLater as exc:
        wait = None if exc.retry_after is None else str(int(exc.retry_after))
        return "retry", str(exc)[:300], wait
    except Refused as exc:
        return "dead", str(exc)[:300], None
    record(engine, target.name, facts.key, external_id)
    return "delivered", None, None


def record(engine: Engine, target: str, key: str, external_id: str) -> None:
    """Keep that ``target`` holds ``key`` as ``external_id`` (a second call changes
    nothing)."""
    with session_scope(engine) as session:
        ins = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        )
        session.execute(
            ins(OutboundActivity)
            .values(target=target, key=key, external_id=external_id, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["target", "key"])
        )


def held(engine: Engine, target: str) -> dict[str, str]:
    """What ``target`` holds: key -> external id."""
    with session_scope(engine) as session:
        return dict(
            session.execute(
                select(OutboundActivity.key, OutboundActivity.external_id).where(
                    OutboundActivity.target == target
                )
            )
            .tuples()
            .all()
        )

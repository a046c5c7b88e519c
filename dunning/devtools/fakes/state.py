"""What the fakes accepted, counted so tests can assert "zero duplicates at the provider"."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Received:
    """One accepted message for one recipient (a SendGrid send with 3 recipients gives 3)."""

    provider: str  # "twilio" | "twilio_call" | "sendgrid"
    message_id: str  # Twilio MessageSid; SendGrid sg_message_id of this recipient
    to: str
    body: str  # SMS body; email subject; a call's TwiML URL
    reminder_id: str | None  # SendGrid custom_args["reminder_id"]; a call's Url reminder_id
    custom_args: dict[str, str] = field(default_factory=dict)
    received_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class CallbackLog:
    """One callback the fakes posted (or tried to) and what the receiver answered."""

    kind: str  # twilio_status | twilio_inbound | twilio_voice | sendgrid_events
    url: str
    status_code: int | None  # None when the receiver could not be reached
    error: str | None = None


class FakeState:
    """Thread-safe store shared by the server's event loop and the test thread."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.messages: list[Received] = []
        self.twilio_messages: dict[str, dict[str, Any]] = {}  # sid -> message resource
        self.twilio_calls: dict[str, dict[str, Any]] = {}  # sid -> call resource
        self.callbacks: list[CallbackLog] = []

    def new_id(self, prefix: str, length: int, alphabet: str = "0123456789abcdef") -> str:
        """A fresh id ``prefix`` + ``length`` characters, reproducible for a given seed."""
        with self._lock:
            return prefix + "".join(self._rng.choice(alphabet) for _ in range(length))

    def random(self) -> float:
        """A number in [0, 1) from the seeded generator."""
        with self._lock:
            return self._rng.random()

    def accept(self, records: list[Received]) -> None:
        """Record accepted messages."""
        with self._lock:
            self.messages.extend(records)

    def put_twilio(self, resource: dict[str, Any]) -> None:
        """Store (or replace) a Twilio message resource by its sid."""
        with self._lock:
            self.twilio_messages[resource["sid"]] = resource

    def update_twilio(self, sid: str, **changes: Any) -> dict[str, Any] | None:
        """The Twilio message ``sid`` after applying ``changes``; None if unknown (reset)."""
        with self._lock:
            resource = self.twilio_messages.get(sid)
            if resource is not None:
                resource.update(changes)
                return dict(resource)
            return None

    def get_twilio(self, sid: str) -> dict[str, Any] | None:
        """A copy of the Twilio message ``sid``, or None."""
        with self._lock:
            resource = self.twilio_messages.get(sid)
            return dict(resource) if resource is not None else None

    def twilio_list(self) -> list[dict[str, Any]]:
        """Copies of all Twilio messages, newest first (Twilio's list order)."""
        with self._lock:
            return [dict(r) for r in reversed(self.twilio_messages.values())]

    def put_twilio_call(self, resource: dict[str, Any]) -> None:
        """Store (or replace) a Twilio call resource by its sid."""
        with self._lock:
            self.twilio_calls[resource["sid"]] = resource

    def update_twilio_call(self, sid: str, **changes: Any) -> dict[str, Any] | None:
        """The Twilio call ``sid`` after applying ``changes``; None if unknown (reset)."""
        with self._lock:
            resource = self.twilio_calls.get(sid)
            if resource is not None:
                resource.update(changes)
                return dict(resource)
            return None

    def get_twilio_call(self, sid: str) -> dict[str, Any] | None:
        """A copy of the Twilio call ``sid``, or None."""
        with self._lock:
            resource = self.twilio_calls.get(sid)
            return dict(resource) if resource is not None else None

    def twilio_call_list(self) -> list[dict[str, Any]]:
        """Copies of all Twilio calls, newest first (Twilio's list order)."""
        with self._lock:
            return [dict(r) for r in reversed(self.twilio_calls.values())]

    def log_callback(self, entry: CallbackLog) -> None:
        """Remember a callback attempt."""
        with self._lock:
            self.callbacks.append(entry)

    def received(self, provider: str | None = None) -> list[Received]:
        """The accepted messages, oldest first, optionally of one provider."""
        with self._lock:
            return [m for m in self.messages if provider is None or m.provider == provider]

    def counts(self, provider: str | None = None) -> dict[str, dict[str, int]]:
        """How often each recipient, reminder_id and body was accepted."""
        records = self.received(provider)
        return {
            "by_recipient": dict(Counter(m.to for m in records)),
            "by_reminder_id": dict(Counter(m.reminder_id for m in records if m.reminder_id)),
            "by_body": dict(Counter(m.body for m in records)),
        }

    def duplicates(self, provider: str | None = None) -> dict[str, int]:
        """Keys accepted more than once: reminder_id when present, else (recipient, body)."""
        keys = Counter(
            f"reminder_id={m.reminder_id}" if m.reminder_id else f"{m.provider}:{m.to}:{m.body}"
            for m in self.received(provider)
        )
        return {key: n for key, n in keys.items() if n > 1}

    def reset(self) -> None:
        """Forget everything accepted and posted (ids stay fresh: receivers never see one twice)."""
        with self._lock:
            self.messages.clear()
            self.twilio_messages.clear()
            self.twilio_calls.clear()
            self.callbacks.clear()

    def snapshot(self) -> dict[str, Any]:
        """Everything as JSON-ready data (the admin endpoint's answer)."""
        records = self.received()
        with self._lock:
            callbacks = [asdict(c) for c in self.callbacks]
            calls = [
                {k: v for k, v in c.items() if k not in ("_form", "_started_at")}
                for c in self.twilio_calls.values()
            ]
        return {
            "calls": calls,  # each with its _transcript (fetches, speech, digits, dials)
            "messages": [{**asdict(m), "received_at": m.received_at.isoformat()} for m in records],
            "counts": self.counts(),
            "duplicates": self.duplicates(),
            "callbacks": callbacks,
        }

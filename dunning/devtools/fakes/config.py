"""Knobs of the fake providers: latency, faults, rate limits, callbacks and credentials."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field, replace

#: Twilio "To" numbers whose status callbacks end badly: number -> (final status, ErrorCode).
#: Twilio's own magic numbers only fail at the API; these two let tests exercise the callbacks.
DEFAULT_TWILIO_CALLBACK_FAILURES: dict[str, tuple[str, int]] = {
    "+15005550010": ("undelivered", 30003),  # unreachable destination handset
    "+15005550011": ("failed", 30008),  # unknown error
}

#: Twilio "To" numbers whose calls do not reach a person: number -> how the call goes
#: (human, machine, no-answer, busy, failed). Every other number is answered by a person.
DEFAULT_TWILIO_CALL_ANSWERS: dict[str, str] = {
    "+15005550020": "machine",
    "+15005550021": "no-answer",
    "+15005550022": "busy",
    "+15005550023": "failed",
}

#: Email local-part prefix -> outcome of the SendGrid event sequence (first match wins).
DEFAULT_EMAIL_OUTCOMES: tuple[tuple[str, str], ...] = (
    ("bounce", "bounce"),  # hard bounce, status 5.x.x
    ("blocked", "blocked"),  # soft bounce (type blocked), status 4.x.x
    ("dropped", "dropped"),
    ("spam", "spamreport"),
    ("unsubscribe", "unsubscribe"),
)


@dataclass(frozen=True)
class FakeConfig:
    """Everything that shapes how the fakes behave; one instance per running fake server."""

    seed: int = 0
    latency_ms: float = 0.0  # added to every API request (asyncio.sleep, never blocks the loop)
    error_rate: float = 0.0  # share of sends answered 500/503
    burst_429: int = 0  # every Nth send is answered 429 (0 = never)
    retry_after_s: int = 1  # Retry-After / X-RateLimit-Reset distance of a 429
    timeout_rate: float = 0.0  # share of sends that hang for hang_s (longer than a client timeout)
    hang_s: float = 30.0
    timeout_accepts: bool = False  # a hanging send was accepted first (the "did it go out?" case)
    rate_limit: float = 0.0  # accepted sends per second per provider; above it 429 (0 = unlimited)
    callbacks: bool = True  # post status callbacks / event webhooks at all
    callback_delay_ms: float = 0.0  # pause between successive callbacks of one message
    sendgrid_event_url: str | None = None  # SendGrid Event Webhook target
    twilio_inbound_url: str | None = None  # where simulated inbound SMS are posted
    emit_opens: bool = False  # add open and click events after delivered
    twilio_callback_failures: dict[str, tuple[str, int]] = field(
        default_factory=lambda: dict(DEFAULT_TWILIO_CALLBACK_FAILURES)
    )
    email_outcomes: tuple[tuple[str, str], ...] = DEFAULT_EMAIL_OUTCOMES
    twilio_call_answers: dict[str, str] = field(
        default_factory=lambda: dict(DEFAULT_TWILIO_CALL_ANSWERS)
    )
    twilio_call_digits: dict[str, str] = field(default_factory=dict)  # number -> keys pressed
    twilio_account_sid: str = ""  # empty: derived from the seed
    twilio_auth_token: str = ""
    sendgrid_api_key: str = ""

    def with_credentials(self) -> FakeConfig:
        """A copy with empty credentials filled in from the seed (same seed, same keys)."""
        rng = random.Random(f"credentials-{self.seed}")

        def pick(alphabet: str, n: int) -> str:
            return "".join(rng.choice(alphabet) for _ in range(n))

        b64 = string.ascii_letters + string.digits + "-_"
        return replace(
            self,
            twilio_account_sid=self.twilio_account_sid or "AC" + pick("0123456789abcdef", 32),
            twilio_auth_token=self.twilio_auth_token or pick("0123456789abcdef", 32),
            sendgrid_api_key=self.sendgrid_api_key or f"SG.{pick(b64, 22)}.{pick(b64, 43)}",
        )

    def validate(self) -> None:
        """Raise ``ValueError`` naming the knob when a value is out of range."""
        for name in ("error_rate", "timeout_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value} is not a share; use a number from 0 to 1")
        for name in ("latency_ms", "hang_s", "rate_limit", "callback_delay_ms", "burst_429"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        bad = {
            n: o
            for n, o in self.twilio_call_answers.items()
            if o not in ("human", "machine", "no-answer", "busy", "failed")
        }
        if bad:
            raise ValueError(
                f"twilio_call_answers {bad} names no outcome; use human, machine, "
                "no-answer, busy or failed"
            )
        if any(not set(d) <= set("0123456789*#") for d in self.twilio_call_digits.values()):
            raise ValueError("twilio_call_digits must hold only the keys 0-9, * and #")
        if self.retry_after_s < 1:
            raise ValueError("retry_after_s must be at least 1 second")

"""``dunning fakes ...``: serve the local Twilio/SendGrid fakes and talk to their admin routes."""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx
import typer

from dunning.cli.app import console, emit_json, fail, fakes_app, out
from dunning.devtools.fakes import FakeConfig, FakeContext, bind, env_for, serve
from dunning.devtools.fakes.server import WEBHOOK_PATHS
from dunning.errors import ConfigError

_FAKES_URL = typer.Option(
    "http://127.0.0.1:8025", "--fakes-url", help="Where `dunning fakes serve` listens."
)


@fakes_app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8025, "--port", help="Port for both providers (0 = any free)."),
    latency_ms: float = typer.Option(0.0, "--latency-ms", help="Added to every API request."),
    error_rate: float = typer.Option(0.0, "--error-rate", help="Share of sends answered 500/503."),
    burst_429: int = typer.Option(0, "--burst-429", help="Every Nth send answered 429 (0 = off)."),
    retry_after: int = typer.Option(1, "--retry-after", help="Retry-After seconds of a 429."),
    timeout_rate: float = typer.Option(0.0, "--timeout-rate", help="Share of sends that hang."),
    hang_s: float = typer.Option(30.0, "--hang-s", help="How long a hanging send hangs."),
    timeout_accepts: bool = typer.Option(
        False, "--timeout-accepts", help="A hanging send is accepted before it hangs."
    ),
    rate_limit: float = typer.Option(0.0, "--rate-limit", help="Sends/s per provider; above: 429."),
    callbacks: bool = typer.Option(True, "--callbacks/--no-callbacks", help="Post callbacks."),
    callback_delay_ms: float = typer.Option(0.0, "--callback-delay-ms", help="Between callbacks."),
    webhook_url: str = typer.Option(
        None, "--webhook-url", help="Base URL of `dunning webhooks serve`; sets all callback URLs."
    ),
    sendgrid_event_url: str = typer.Option(None, "--sendgrid-event-url", help="Event Webhook URL."),
    twilio_inbound_url: str = typer.Option(None, "--twilio-inbound-url", help="Inbound SMS URL."),
    emit_opens: bool = typer.Option(False, "--emit-opens", help="Add open and click events."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same credentials, ids and faults."),
    call_answer: list[str] = typer.Option(
        [],
        "--call-answer",
        help="NUMBER=human|machine|no-answer|busy|failed: how calls to "
        "NUMBER go (repeatable; others are answered by a person).",
    ),
    call_digits: list[str] = typer.Option(
        [],
        "--call-digits",
        help="NUMBER=DIGITS: keys pressed in calls to NUMBER, one per "
        "<Gather> (repeatable), e.g. +4915112345678=9.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the env vars as one JSON object."),
) -> None:
    """Serve fake Twilio (/2010-04-01: Messages and Calls) and SendGrid (/v3) on one port
    until Ctrl-C."""
    base = webhook_url.rstrip("/") if webhook_url else None
    answers, digits = _pairs("--call-answer", call_answer), _pairs("--call-digits", call_digits)
    config = FakeConfig(
        seed=seed,
        latency_ms=latency_ms,
        error_rate=error_rate,
        burst_429=burst_429,
        retry_after_s=retry_after,
        timeout_rate=timeout_rate,
        hang_s=hang_s,
        timeout_accepts=timeout_accepts,
        rate_limit=rate_limit,
        callbacks=callbacks,
        callback_delay_ms=callback_delay_ms,
        emit_opens=emit_opens,
        sendgrid_event_url=sendgrid_event_url
        or (base + WEBHOOK_PATHS["sendgrid_events"] if base else None),
        twilio_inbound_url=twilio_inbound_url
        or (base + WEBHOOK_PATHS["twilio_inbound"] if base else None),
        twilio_call_answers={**FakeConfig().twilio_call_answers, **answers},
        twilio_call_digits=digits,
    )
    try:
        ctx = FakeContext.create(config)
    except ValueError as exc:
        fail(f"{exc} (see `dunning fakes serve --help`)")
    try:
        sock = bind(host, port)
    except ConfigError as exc:
        fail(str(exc))
    # A wildcard listen address is not one a client can connect to; print loopback instead.
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    env = env_for(f"http://{shown_host}:{sock.getsockname()[1]}", ctx)
    if base:
        env["DUNNING_TWILIO_STATUS_CALLBACK_URL"] = base + WEBHOOK_PATHS["twilio_status"]
        # Calls fetch their TwiML from the receiver and report there.
        env["DUNNING_WEBHOOK_PUBLIC_URL"] = base
    if json_out:
        emit_json(env)
    else:
        console.print("fakes ready; point dunning at them with:")
        for name, value in env.items():
            out.print(f"export {name}={value}", highlight=False, soft_wrap=True)
    sys.stdout.flush()  # serve() blocks; a piped stdout must show the variables now
    serve(ctx, sock)


def _pairs(option: str, values: list[str]) -> dict[str, str]:
    """``NUMBER=VALUE`` options as a dict; exits naming the option when one is malformed."""
    pairs: dict[str, str] = {}
    for value in values:
        number, sep, rest = value.partition("=")
        if not sep or not number.startswith("+") or not rest:
            fail(
                f"{option} {value!r} is not NUMBER=VALUE; write e.g. {option} "
                "+4915112345678=" + ("9" if option == "--call-digits" else "no-answer")
            )
        pairs[number] = rest
    return pairs


def _admin(method: str, fakes_url: str, path: str, **kwargs: Any) -> Any:
    """The JSON answer of an admin route of running fakes; exits with a hint when unreachable."""
    url = fakes_url.rstrip("/") + path
    try:
        response = httpx.request(method, url, timeout=10.0, **kwargs)
    except httpx.HTTPError as exc:
        fail(
            f"cannot reach the fakes at {fakes_url} ({type(exc).__name__}); start them with "
            "`dunning fakes serve` or pass --fakes-url"
        )
    if response.status_code >= 400:
        fail(f"the fakes at {fakes_url} refused {path}: {response.text}")
    return response.json()


@fakes_app.command("messages")
def messages_command(fakes_url: str = _FAKES_URL) -> None:
    """Print what the running fakes accepted, with counts and duplicates, as JSON."""
    emit_json(_admin("GET", fakes_url, "/_fake/messages"))


@fakes_app.command("reset")
def reset_command(fakes_url: str = _FAKES_URL) -> None:
    """Make the running fakes forget everything they accepted."""
    emit_json(_admin("POST", fakes_url, "/_fake/reset"))


@fakes_app.command("inbound")
def inbound_command(
    from_: str = typer.Option(..., "--from", help="Sender, E.164 (the customer)."),
    to: str = typer.Option(..., "--to", help="Our Twilio number, E.164."),
    body: str = typer.Option(..., "--body", help="Text of the SMS, e.g. STOP."),
    url: str = typer.Option(None, "--url", help="Webhook URL (default: the fake's inbound URL)."),
    fakes_url: str = _FAKES_URL,
) -> None:
    """Simulate an inbound SMS: the fake posts Twilio's signed webhook to the receiver."""
    payload = {"From": from_, "To": to, "Body": body, **({"Url": url} if url else {})}
    answer = _admin(
        "POST",
        fakes_url,
        "/_fake/twilio/inbound",
        content=json.dumps(payload),
        headers={"Content-Type": "application/json"},
    )
    emit_json(answer)

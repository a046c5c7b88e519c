"""The SendGrid fake, driven by the official sendgrid SDK; events verified with EventWebhook."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fakes_support import Hook, receiver, sendgrid_client
from python_http_client.exceptions import (
    BadRequestsError,
    HTTPError,
    PayloadTooLargeError,
    TooManyRequestsError,
    UnauthorizedError,
)
from sendgrid.helpers.eventwebhook import EventWebhook, EventWebhookHeader
from sendgrid.helpers.mail import CustomArg, Mail

from dunning.devtools.fakes import run_fakes

SENDER = "billing@example.com"


def mail(
    to: str = "jane@example.com", reminder_id: str = "42", subject: str = "Invoice due"
) -> Mail:
    message = Mail(
        from_email=SENDER,
        to_emails=to,
        subject=subject,
        plain_text_content="Please pay",
        html_content="<p>Please pay</p>",
    )
    message.custom_arg = CustomArg("reminder_id", reminder_id)
    return message


def body(n_personalizations: int, **extra: Any) -> dict[str, Any]:
    return {
        "personalizations": [
            {"to": [{"email": f"c{i}@example.com"}]} for i in range(n_personalizations)
        ],
        "from": {"email": SENDER},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "v"}],
        **extra,
    }


def events_of(hook: Hook) -> list[dict[str, Any]]:
    return json.loads(hook.body)


def verified(public_key: str, hook: Hook, payload: str | None = None) -> bool:
    return EventWebhook(public_key).verify_signature(
        hook.body.decode() if payload is None else payload,
        hook.headers[EventWebhookHeader.SIGNATURE],
        hook.headers[EventWebhookHeader.TIMESTAMP],
    )


def test_send_is_202_with_message_id_and_counted_per_reminder() -> None:
    with run_fakes() as fakes:
        response = sendgrid_client(fakes).send(mail())
        assert response.status_code == 202 and response.body in (b"", "")
        message_id = response.headers["X-Message-Id"]
        assert len(message_id) == 22
        [got] = fakes.received("sendgrid")
        assert (got.to, got.body, got.reminder_id) == ("jane@example.com", "Invoice due", "42")
        assert got.message_id.startswith(message_id + ".")


def test_wrong_key_is_401_with_sendgrid_errors() -> None:
    with run_fakes() as fakes:
        with pytest.raises(UnauthorizedError) as info:
            sendgrid_client(fakes, key="SG.wrong.key").send(mail())
        [error] = json.loads(info.value.body)["errors"]
        assert set(error) == {"message", "field", "help"} and "authorization" in error["message"]
        assert fakes.received() == []


def test_thousand_personalizations_pass_and_one_more_is_400() -> None:
    with run_fakes() as fakes:
        client = sendgrid_client(fakes)
        assert client.client.mail.send.post(request_body=body(1000)).status_code == 202
        assert len(fakes.received()) == 1000
        with pytest.raises(BadRequestsError) as info:
            client.client.mail.send.post(request_body=body(1001))
        [error] = json.loads(info.value.body)["errors"]
        assert error["field"] == "personalizations" and "1000" in error["message"]
        assert len(fakes.received()) == 1000


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"personalizations": []}, ["personalizations"]),
        ({"from": {}}, ["from.email"]),
        ({"from": {"email": "not-an-address"}}, ["from.email"]),
        ({"subject": ""}, ["subject"]),
        ({"content": []}, ["content"]),
        ({"content": [{"type": "text/plain", "value": ""}]}, ["content.0.value"]),
        (
            {"personalizations": [{"to": [{"email": "x@example.com"}]}, {"to": []}]},
            ["personalizations.1.to"],
        ),
        ({"personalizations": [{"to": [{"email": "nope"}]}]}, ["personalizations.0.to.0.email"]),
        ({"custom_args": {"reminder_id": 42}}, ["custom_args"]),
        ({"from": {}, "subject": "", "content": []}, ["from.email", "subject", "content"]),
    ],
)
def test_invalid_bodies_are_400_naming_the_fields(
    change: dict[str, Any], fields: list[str]
) -> None:
    with run_fakes() as fakes:
        with pytest.raises(BadRequestsError) as info:
            sendgrid_client(fakes).client.mail.send.post(request_body={**body(1), **change})
        errors = json.loads(info.value.body)["errors"]
        assert [e["field"] for e in errors] == fields
        assert all(e["message"] and e["help"] for e in errors)
        assert fakes.received() == []


def test_template_id_stands_in_for_subject_and_content() -> None:
    with run_fakes() as fakes:
        request = {**body(1), "template_id": "d-123"}
        del request["subject"], request["content"]
        assert sendgrid_client(fakes).client.mail.send.post(request_body=request).status_code == 202


def test_payload_over_30_mb_is_413() -> None:
    with run_fakes() as fakes:
        big = body(1, content=[{"type": "text/plain", "value": "x" * (30 * 1024 * 1024)}])
        with pytest.raises(PayloadTooLargeError) as info:
            sendgrid_client(fakes).client.mail.send.post(request_body=big)
        assert "30MB" in json.loads(info.value.body)["errors"][0]["message"]


def test_every_nth_send_is_429_with_rate_limit_headers() -> None:
    with run_fakes(burst_429=1, retry_after_s=3) as fakes:
        with pytest.raises(TooManyRequestsError) as info:
            sendgrid_client(fakes).send(mail())
        headers = info.value.headers
        assert headers["Retry-After"] == "3" and headers["X-RateLimit-Remaining"] == "0"
        assert int(headers["X-RateLimit-Reset"]) > 1_700_000_000
        assert fakes.received() == []


def test_error_rate_one_answers_5xx() -> None:
    with run_fakes(error_rate=1.0) as fakes:
        with pytest.raises(HTTPError) as info:
            sendgrid_client(fakes).send(mail())
        assert info.value.status_code in (500, 503)
        assert fakes.received() == []


def test_events_are_signed_and_carry_message_id_and_custom_args() -> None:
    with receiver() as hooks, run_fakes(sendgrid_event_url=hooks.url("/e")) as fakes:
        message_id = sendgrid_client(fakes).send(mail()).headers["X-Message-Id"]
        processed, delivered = hooks.take(2)
        assert processed.headers["Content-Type"] == "application/json"
        assert verified(fakes.sendgrid_public_key, processed)
        assert verified(fakes.sendgrid_public_key, delivered)
        tampered = delivered.body.decode().replace("jane", "john")
        assert not verified(fakes.sendgrid_public_key, delivered, tampered)
        [p], [d] = events_of(processed), events_of(delivered)
        assert (p["event"], d["event"]) == ("processed", "delivered")
        for event in (p, d):
            assert event["email"] == "jane@example.com" and event["reminder_id"] == "42"
            assert event["sg_message_id"].startswith(message_id + ".filter")
            assert isinstance(event["timestamp"], int)
        assert p["sg_event_id"] != d["sg_event_id"]


def test_no_events_when_callbacks_are_off() -> None:
    with receiver() as hooks:
        with run_fakes(sendgrid_event_url=hooks.url("/e"), callbacks=False) as muted:
            sendgrid_client(muted).send(mail(to="muted@example.com"))
        # Events of the muted fake would have been posted before these; the first must be loud's.
        with run_fakes(sendgrid_event_url=hooks.url("/e")) as loud:
            sendgrid_client(loud).send(mail(to="loud@example.com"))
            assert events_of(hooks.next())[0]["email"] == "loud@example.com"


def test_bounce_blocked_and_other_outcomes_by_address() -> None:
    with receiver() as hooks, run_fakes(sendgrid_event_url=hooks.url("/e")) as fakes:
        request = body(0)
        request["personalizations"] = [
            {"to": [{"email": a}], "custom_args": {"reminder_id": str(i)}}
            for i, a in enumerate(
                ["bounce1@example.com", "blocked@example.com", "spam@example.com", "ok@example.com"]
            )
        ]
        sendgrid_client(fakes).client.mail.send.post(request_body=request)
        batches = [events_of(h) for h in hooks.take(3)]
        assert [e["event"] for e in batches[0]] == ["processed"] * 4
        by_mail = {e["email"]: e for e in batches[1]}
        hard, soft = by_mail["bounce1@example.com"], by_mail["blocked@example.com"]
        assert (hard["event"], hard["type"], hard["status"][0]) == ("bounce", "bounce", "5")
        assert (soft["event"], soft["type"], soft["status"][0]) == ("bounce", "blocked", "4")
        assert by_mail["ok@example.com"]["event"] == "delivered"
        assert [(e["email"], e["event"], e["reminder_id"]) for e in batches[2]] == [
            ("spam@example.com", "spamreport", "2")
        ]


def test_opens_and_clicks_follow_delivery_when_enabled() -> None:
    with (
        receiver() as hooks,
        run_fakes(sendgrid_event_url=hooks.url("/e"), emit_opens=True) as fakes,
    ):
        sendgrid_client(fakes).send(mail())
        batches = [events_of(h) for h in hooks.take(3)]
        assert [[e["event"] for e in b] for b in batches] == [
            ["processed"],
            ["delivered"],
            ["open", "click"],
        ]
        assert batches[2][1]["url"].startswith("https://")


def test_duplicate_reminder_ids_show_in_counts_and_admin_endpoint() -> None:
    with run_fakes() as fakes:
        client = sendgrid_client(fakes)
        client.send(mail(reminder_id="7"))
        client.send(mail(reminder_id="8"))
        assert fakes.state.duplicates() == {}
        client.send(mail(reminder_id="7"))
        assert fakes.state.duplicates() == {"reminder_id=7": 2}
        snapshot = httpx.get(f"{fakes.base_url}/_fake/messages").json()
        assert snapshot["counts"]["by_reminder_id"] == {"7": 2, "8": 1}
        assert snapshot["counts"]["by_recipient"] == {"jane@example.com": 3}


def test_public_key_is_served_and_stable_per_seed() -> None:
    with run_fakes(seed=5) as one, run_fakes(seed=5) as two, run_fakes(seed=6) as three:
        assert one.sendgrid_public_key == two.sendgrid_public_key != three.sendgrid_public_key
        info = httpx.get(f"{one.base_url}/_fake/info").json()
        assert info["sendgrid_public_key"] == one.sendgrid_public_key
        assert one.env()["DUNNING_SENDGRID_WEBHOOK_PUBLIC_KEY"] == one.sendgrid_public_key

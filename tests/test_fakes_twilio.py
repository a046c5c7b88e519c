"""The Twilio fake, driven by the official twilio SDK over real HTTP on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import re
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl

import httpx
import pytest
import requests
from fakes_support import Hook, receiver, twilio_client
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from dunning.devtools.fakes import run_fakes
from dunning.devtools.fakes.twilio import num_segments

FROM = "+15005550006"
TO = "+14155550100"


def form_of(hook: Hook) -> dict[str, str]:
    return dict(parse_qsl(hook.body.decode(), keep_blank_values=True))


def signed_ok(token: str, url: str, hook: Hook) -> bool:
    validator = RequestValidator(token)
    return validator.validate(url, form_of(hook), hook.headers["X-Twilio-Signature"])


def test_send_returns_a_queued_message_resource_and_is_counted() -> None:
    with run_fakes(seed=1) as fakes:
        client = twilio_client(fakes)
        msg = client.messages.create(to=TO, from_=FROM, body="Invoice INV-1 is due")
        assert re.fullmatch(r"SM[0-9a-f]{32}", msg.sid)
        assert (msg.status, msg.to, msg.from_, msg.body) == (
            "queued",
            TO,
            FROM,
            "Invoice INV-1 is due",
        )
        assert msg.num_segments == "1" and msg.direction == "outbound-api"
        assert msg.account_sid == fakes.twilio_account_sid
        assert msg.uri == f"/2010-04-01/Accounts/{fakes.twilio_account_sid}/Messages/{msg.sid}.json"
        assert msg.date_created is not None and msg.date_created.tzinfo is not None
        [got] = fakes.received("twilio")
        assert (got.message_id, got.to, got.body) == (msg.sid, TO, "Invoice INV-1 is due")


def test_raw_create_answers_201_with_rfc2822_dates() -> None:
    with run_fakes() as fakes:
        url = f"{fakes.base_url}/2010-04-01/Accounts/{fakes.twilio_account_sid}/Messages.json"
        response = httpx.post(
            url,
            data={"To": TO, "From": FROM, "Body": "hi"},
            auth=(fakes.twilio_account_sid, fakes.twilio_auth_token),
        )
        assert response.status_code == 201
        body = response.json()
        assert re.fullmatch(
            r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000", body["date_created"]
        )
        assert body["error_code"] is None and body["price"] is None
        assert not any(key.startswith("_") for key in body)


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
        ("12345", 21211),
    ],
)
def test_magic_numbers_are_refused_with_twilio_codes(to: str, code: int) -> None:
    with run_fakes() as fakes:
        with pytest.raises(TwilioRestException) as info:
            twilio_client(fakes).messages.create(to=to, from_=FROM, body="x")
        assert (info.value.status, info.value.code) == (400, code)
        assert fakes.received() == []


def test_missing_fields_get_their_twilio_codes() -> None:
    with run_fakes() as fakes:
        url = f"{fakes.base_url}/2010-04-01/Accounts/{fakes.twilio_account_sid}/Messages.json"
        auth = (fakes.twilio_account_sid, fakes.twilio_auth_token)
        cases = [
            ({"From": FROM, "Body": "x"}, 21604),
            ({"To": TO, "Body": "x"}, 21603),
            ({"To": TO, "From": FROM}, 21602),
            ({"To": TO, "From": FROM, "Body": "x" * 1601}, 21617),
        ]
        for form, code in cases:
            response = httpx.post(url, data=form, auth=auth)
            assert response.status_code == 400
            assert response.json()["code"] == code
            assert response.json()["more_info"] == f"https://www.twilio.com/docs/errors/{code}"


def test_wrong_credentials_are_401_with_code_20003() -> None:
    with run_fakes() as fakes:
        with pytest.raises(TwilioRestException) as info:
            twilio_client(fakes, token="0" * 32).messages.create(to=TO, from_=FROM, body="x")
        assert (info.value.status, info.value.code) == (401, 20003)
        assert fakes.received() == []


def test_every_nth_send_is_429_with_retry_after() -> None:
    with run_fakes(burst_429=2, retry_after_s=7) as fakes:
        client = twilio_client(fakes)
        client.messages.create(to=TO, from_=FROM, body="first")
        with pytest.raises(TwilioRestException) as info:
            client.messages.create(to=TO, from_=FROM, body="second")
        assert (info.value.status, info.value.code) == (429, 20429)
        client.messages.create(to=TO, from_=FROM, body="third")
        url = f"{fakes.base_url}/2010-04-01/Accounts/{fakes.twilio_account_sid}/Messages.json"
        raw = httpx.post(
            url,
            data={"To": TO, "From": FROM, "Body": "fourth"},
            auth=(fakes.twilio_account_sid, fakes.twilio_auth_token),
        )
        assert raw.status_code == 429 and raw.headers["Retry-After"] == "7"
        assert [m.body for m in fakes.received()] == ["first", "third"]


def test_rate_limit_refuses_sends_above_it() -> None:
    with run_fakes(rate_limit=1) as fakes:
        client = twilio_client(fakes)
        client.messages.create(to=TO, from_=FROM, body="one")
        with pytest.raises(TwilioRestException) as info:
            client.messages.create(to=TO, from_=FROM, body="two")
        assert info.value.status == 429
        assert len(fakes.received()) == 1


def test_error_rate_one_answers_every_send_with_5xx() -> None:
    with run_fakes(error_rate=1.0) as fakes:
        client = twilio_client(fakes)
        statuses = set()
        for _ in range(6):
            with pytest.raises(TwilioRestException) as info:
                client.messages.create(to=TO, from_=FROM, body="x")
            statuses.add(info.value.status)
        assert statuses <= {500, 503} and statuses
        assert fakes.received() == []


@pytest.mark.parametrize("accepts", [False, True])
def test_timeout_hangs_past_the_client_timeout(accepts: bool) -> None:
    with run_fakes(timeout_rate=1.0, hang_s=5, timeout_accepts=accepts) as fakes:
        client = twilio_client(fakes, timeout=1.0)
        with pytest.raises(requests.exceptions.Timeout):
            client.messages.create(to=TO, from_=FROM, body="maybe")
        # timeout_accepts: the message went out although the client saw a timeout.
        assert len(fakes.received()) == (1 if accepts else 0)


def test_fetch_and_unknown_sid() -> None:
    with run_fakes() as fakes:
        client = twilio_client(fakes)
        sid = client.messages.create(to=TO, from_=FROM, body="x").sid
        assert client.messages(sid).fetch().body == "x"
        with pytest.raises(TwilioRestException) as info:
            client.messages("SM" + "0" * 32).fetch()
        assert (info.value.status, info.value.code) == (404, 20404)


def test_list_filters_by_to_from_and_date_sent_and_pages() -> None:
    with run_fakes() as fakes:
        client = twilio_client(fakes)
        other = "+14155550199"
        for i in range(5):
            client.messages.create(to=TO if i % 2 == 0 else other, from_=FROM, body=f"m{i}")
        assert sorted(m.body for m in client.messages.list(to=TO)) == ["m0", "m2", "m4"]
        assert [m.body for m in client.messages.list(to=other, from_=FROM)] == ["m3", "m1"]
        assert client.messages.list(from_="+15005550999") == []
        # PageSize 2 forces the SDK through next_page_uri for all 5.
        assert len(client.messages.list(page_size=2)) == 5
        page = client.messages.page(page_size=2)
        assert len(list(page)) == 2 and page.next_page_url is not None
        now = dt.datetime.now(dt.UTC)
        assert len(client.messages.list(date_sent_after=now - dt.timedelta(hours=1))) == 5
        assert client.messages.list(date_sent_after=now + dt.timedelta(hours=1)) == []
        assert client.messages.list(date_sent_before=now - dt.timedelta(hours=1)) == []
        assert len(client.messages.list(date_sent=now.strftime("%Y-%m-%d"))) == 5


def test_status_callbacks_are_signed_and_end_delivered() -> None:
    with receiver() as hooks, run_fakes() as fakes:
        url = hooks.url("/webhooks/twilio/status")
        client = twilio_client(fakes)
        msg = client.messages.create(to=TO, from_=FROM, body="x", status_callback=url)
        sent, delivered = hooks.take(2)
        assert [form_of(h)["MessageStatus"] for h in (sent, delivered)] == ["sent", "delivered"]
        form = form_of(delivered)
        assert (form["MessageSid"], form["SmsStatus"], form["To"], form["From"]) == (
            msg.sid,
            "delivered",
            TO,
            FROM,
        )
        assert form["AccountSid"] == fakes.twilio_account_sid and form["ApiVersion"] == "2010-04-01"
        assert "ErrorCode" not in form
        assert signed_ok(fakes.twilio_auth_token, url, delivered)
        assert not signed_ok("f" * 32, url, delivered)
        assert client.messages(msg.sid).fetch().status == "delivered"


@pytest.mark.parametrize(
    ("to", "statuses", "code"),
    [("+15005550010", ["sent", "undelivered"], "30003"), ("+15005550011", ["failed"], "30008")],
)
def test_failure_numbers_end_with_an_error_code(to: str, statuses: list[str], code: str) -> None:
    with receiver() as hooks, run_fakes() as fakes:
        url = hooks.url("/status")
        client = twilio_client(fakes)
        sid = client.messages.create(to=to, from_=FROM, body="x", status_callback=url).sid
        forms = [form_of(h) for h in hooks.take(len(statuses))]
        assert [f["MessageStatus"] for f in forms] == statuses
        assert forms[-1]["ErrorCode"] == code
        fetched = client.messages(sid).fetch()
        assert (fetched.status, fetched.error_code) == (statuses[-1], int(code))


def test_messaging_service_sends_are_accepted_and_get_a_sender() -> None:
    with receiver() as hooks, run_fakes() as fakes:
        url = hooks.url("/status")
        service = "MG" + "a" * 32
        msg = twilio_client(fakes).messages.create(
            to=TO, messaging_service_sid=service, body="x", status_callback=url
        )
        assert (msg.status, msg.from_, msg.messaging_service_sid) == ("accepted", None, service)
        form = form_of(hooks.next())
        assert form["From"] == FROM and form["MessagingServiceSid"] == service


def test_no_callbacks_when_switched_off() -> None:
    with receiver() as hooks, run_fakes(callbacks=False) as fakes:
        client = twilio_client(fakes)
        client.messages.create(to=TO, from_=FROM, body="x", status_callback=hooks.url("/s"))
        # A second message with callbacks to the same receiver would arrive; none may come first.
        with run_fakes() as loud:
            twilio_client(loud).messages.create(
                to=TO, from_=FROM, body="y", status_callback=hooks.url("/s")
            )
            assert form_of(hooks.next())["AccountSid"] == loud.twilio_account_sid


def test_inbound_sms_by_function_and_admin_endpoint_is_signed() -> None:
    with receiver() as hooks, run_fakes(twilio_inbound_url="placeholder") as fakes:
        url = hooks.url("/webhooks/twilio/inbound")
        assert fakes.send_inbound_sms(TO, FROM, "STOP", url=url) == 200
        first = hooks.next()
        form = form_of(first)
        assert (form["Body"], form["From"], form["To"], form["NumMedia"]) == ("STOP", TO, FROM, "0")
        assert form["AccountSid"] == fakes.twilio_account_sid and form["SmsStatus"] == "received"
        assert signed_ok(fakes.twilio_auth_token, url, first)
        answer = httpx.post(
            f"{fakes.base_url}/_fake/twilio/inbound",
            json={"From": TO, "To": FROM, "Body": "PAID", "Url": url},
        ).json()
        second = hooks.next()
        assert form_of(second)["Body"] == "PAID" and answer["receiver_status"] == 200
        assert answer["MessageSid"] == form_of(second)["MessageSid"]
        assert signed_ok(fakes.twilio_auth_token, url, second)
        inbound = twilio_client(fakes).messages.list(to=FROM)
        assert sorted(m.body for m in inbound) == ["PAID", "STOP"]
        assert {m.direction for m in inbound} == {"inbound"}
        assert fakes.received() == []  # inbound messages are not sends


def test_admin_endpoint_counts_duplicates_and_resets() -> None:
    with run_fakes() as fakes:
        client = twilio_client(fakes)
        for _ in range(2):
            client.messages.create(to=TO, from_=FROM, body="same reminder")
        snapshot = httpx.get(f"{fakes.base_url}/_fake/messages").json()
        assert snapshot["counts"]["by_body"] == {"same reminder": 2}
        assert snapshot["duplicates"] == {f"twilio:{TO}:same reminder": 2}
        assert len(snapshot["messages"]) == 2
        assert httpx.post(f"{fakes.base_url}/_fake/reset").json() == {"reset": True}
        assert fakes.received() == [] and client.messages.list() == []


def test_concurrent_clients_with_latency_all_get_distinct_messages() -> None:
    with run_fakes(latency_ms=50) as fakes:
        client = twilio_client(fakes)

        def send(i: int) -> str:
            return client.messages.create(to=TO, from_=FROM, body=f"m{i}").sid

        with ThreadPoolExecutor(max_workers=16) as pool:
            sids = list(pool.map(send, range(32)))
        assert len(set(sids)) == 32
        assert sorted(m.body for m in fakes.received()) == sorted(f"m{i}" for i in range(32))
        assert fakes.state.duplicates() == {}


def test_same_seed_gives_same_credentials_and_ids() -> None:
    def first_sid(seed: int) -> tuple[str, str]:
        with run_fakes(seed=seed) as fakes:
            return fakes.twilio_auth_token, twilio_client(fakes).messages.create(
                to=TO, from_=FROM, body="x"
            ).sid

    assert first_sid(7) == first_sid(7)
    assert first_sid(7) != first_sid(8)


def test_segments_follow_gsm7_and_ucs2_limits() -> None:
    assert num_segments("a" * 160) == 1
    assert num_segments("a" * 161) == 2
    assert num_segments("€" * 80) == 1  # extension characters take two septets
    assert num_segments("€" * 81) == 2
    assert num_segments("ж" * 70) == 1
    assert num_segments("ж" * 71) == 2

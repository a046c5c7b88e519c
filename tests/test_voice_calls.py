"""Reminder calls end to end: the twilio SDK places calls at the fake Twilio, which fetches
the TwiML from the real webhook receiver (signed), presses digits and reports the outcome
(signed) — every digit path, answering machines and unanswered calls."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import partial

import pytest
from factories import add_customer, add_invoice
from sqlalchemy import Engine, select

from dunning.channels import get_channel
from dunning.config import get_settings
from dunning.db import session_scope
from dunning.db.models import Customer, DeliveryEvent, Reminder
from dunning.delivery import deliver_batch
from dunning.render import compose
from dunning.tracking import apply_inbox
from dunning.tracking.metrics import compute_metrics
from dunning.voice.answer import PAYMENT_LINK
from dunning.voice.calls import link_on_offer
from tests.voice_support import SUPPORT, said, voice_rig, wait_for_calls

AS_OF = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
#: customer -> (number, digits pressed, sms consent, locale)
CUSTOMERS = {
    "repeat": ("+4915100000001", "1", True, "de_DE"),
    "link": ("+4915100000002", "2", True, "de_DE"),
    "link_no_consent": ("+4915100000003", "2", False, "en_US"),
    "link_opted_out": ("+4915100000007", "2", True, "en_US"),  # replied STOP to an SMS
    "support": ("+4915100000004", "3", True, "fr_FR"),
    "stop": ("+4915100000005", "9", True, "es_ES"),
    "invalid": ("+4915100000006", "7", True, "en_US"),
    "machine": ("+15005550020", "", True, "en_US"),
    "no_answer": ("+15005550021", "", True, "en_US"),
}


def _seed(engine: Engine) -> dict[str, int]:
    ids = {}
    for i, (cid, (phone, _, consent, locale)) in enumerate(CUSTOMERS.items()):
        add_customer(
            engine,
            cid,
            phone=phone,
            sms_consent=consent,
            voice_consent=True,
            locale=locale,
            country="DE",
            timezone="Europe/Berlin",
            sms_opt_out=cid == "link_opted_out",
        )
        invoice = add_invoice(
            engine, f"INV-{i:04d}", cid, currency="EUR", amount=Decimal("1250.50")
        )
        with session_scope(engine) as s:
            row = Reminder(
                invoice_id=invoice,
                customer_id=cid,
                stage="final_notice",
                channel="voice",
                status="planned",
            )
            s.add(row)
            s.flush()
            ids[cid] = row.id
    return ids


def _call(engine: Engine, ids: dict[str, int]) -> None:
    result = deliver_batch(
        engine,
        list(ids.values()),
        claimer="test",
        channels={"voice": get_channel("voice")},
        compose=partial(compose, settings=get_settings().channels),
        as_of=AS_OF,
    )
    assert (result.sent, result.failed, result.skipped) == (len(ids), 0, 0)


def test_every_digit_path_of_a_reminder_call(engine: Engine, monkeypatch: pytest.MonkeyPatch):
    ids = _seed(engine)
    digits = {phone: keys for phone, keys, _, _ in CUSTOMERS.values() if keys}
    with voice_rig(engine, monkeypatch, twilio_call_digits=digits) as rig:
        _call(engine, ids)
        wait_for_calls(rig, engine, len(ids))
        calls = {c["to"]: c for c in rig.fakes.calls()}
        texts = rig.fakes.received("twilio")  # SMS only
    assert {c["status"] for c in calls.values()} == {"completed", "no-answer"}
    transcript = {cid: said(calls[phone]) for cid, (phone, *_) in CUSTOMERS.items()}

    # 1: the reminder is spoken again, in German, with the invoice number spelled in groups.
    repeat = transcript["repeat"]
    assert len([t for t in repeat if "letzte Mahnung" in t]) == 2
    assert "I N V, 0 0, 0 0" in repeat[0] and "eintausendzweihundertfünfzig Euro" in repeat[0]
    assert {e[1] for e in calls[CUSTOMERS["repeat"][0]]["_transcript"] if e[0] == "say"} == {
        "de-DE"
    }
    # 2 with SMS consent: the payment link goes out by SMS through the ledger, as its own row.
    assert any("Zahlungslink per SMS geschickt" in t for t in transcript["link"])
    link_sms = [m for m in texts if m.to == CUSTOMERS["link"][0]]
    assert len(link_sms) == 1 and "https://pay.example.com/x" in link_sms[0].body
    with session_scope(engine) as s:
        rows = s.scalars(select(Reminder).where(Reminder.stage == PAYMENT_LINK)).all()
        assert [(r.customer_id, r.channel, r.status) for r in rows] == [("link", "sms", "sent")]
    # 2 without SMS consent: nothing is sent and the caller is told why; 2 was not offered.
    assert any("not agreed to receive text messages" in t for t in transcript["link_no_consent"])
    assert not any("Press 2" in t for t in transcript["link_no_consent"])
    assert not [m for m in texts if m.to == CUSTOMERS["link_no_consent"][0]]
    assert any("not agreed to receive text messages" in t for t in transcript["link_opted_out"])
    assert not [m for m in texts if m.to == CUSTOMERS["link_opted_out"][0]]
    # 3: connected to the support number.
    support = calls[CUSTOMERS["support"][0]]["_transcript"]
    assert ("dial", SUPPORT) in support and any("Tapez 3" in t for t in transcript["support"])
    # 9: the voice opt-out is recorded at once and the call ends.
    assert transcript["stop"][-1].startswith("No recibirá más llamadas")
    # Anything else: told so, and the menu again.
    assert transcript["invalid"][2].startswith("Sorry, that was not one of the options.")
    assert "Press 1" in transcript["invalid"][3] and transcript["invalid"][-1] == (
        "Thank you. Goodbye."
    )
    # An answering machine gets the short message asking to call back, nothing else.
    assert len(transcript["machine"]) == 1 and "call us back at" in transcript["machine"][0]
    assert transcript["no_answer"] == []

    with session_scope(engine) as s:
        optout = {c: o for c, o in s.execute(select(Customer.customer_id, Customer.voice_opt_out))}
    assert [c for c, out in optout.items() if out] == ["stop"]

    summary = apply_inbox(engine)
    assert summary.counts["call_completed"] == 7 and summary.counts["call_voicemail"] == 1
    with session_scope(engine) as s:
        outcome = {
            r.customer_id: (r.call_outcome, r.status)
            for r in s.scalars(select(Reminder).where(Reminder.channel == "voice"))
        }
        digit_events = s.scalars(
            select(DeliveryEvent.event_type).where(DeliveryEvent.event_type.like("digit_%"))
        ).all()
    assert outcome["machine"] == ("voicemail", "delivered")
    assert outcome["no_answer"] == ("no-answer", "undelivered")
    assert outcome["repeat"] == ("completed", "delivered")
    assert sorted(digit_events) == [
        "digit_1",
        "digit_2",
        "digit_2",
        "digit_2",
        "digit_3",
        "digit_7",
        "digit_9",
    ]
    assert apply_inbox(engine).counts.get("call_completed", 0) == 0  # applied once only

    metrics = compute_metrics(engine, by=("channel",)).set_index("channel")
    voice = metrics.loc["voice"]
    assert (voice["voice"], voice["answered"], voice["voicemail"], voice["no_answer"]) == (
        9,
        7,
        1,
        1,
    )
    assert voice["answer_rate"] == round(7 / 9, 4)
    assert metrics.loc["sms", "voice"] == 0  # the payment-link SMS counts as an SMS


@pytest.mark.parametrize(
    ("consent", "opt_out", "phone", "link", "not_mobile", "offered"),
    [
        (True, False, "+4915100000001", "https://pay.example.com/x", False, True),
        (False, False, "+4915100000001", "https://pay.example.com/x", False, False),
        (True, True, "+4915100000001", "https://pay.example.com/x", False, False),
        (True, False, None, "https://pay.example.com/x", False, False),
        (True, False, "+4930123456", "https://pay.example.com/x", True, False),  # landline
        (True, False, "+4915100000001", None, False, False),
        (True, False, "+4915100000001", "javascript:alert(1)", False, False),
    ],
)
def test_digit_2_is_offered_only_where_a_payment_link_sms_can_go(
    consent, opt_out, phone, link, not_mobile, offered
):
    assert link_on_offer(consent, opt_out, phone, link, not_mobile) is offered

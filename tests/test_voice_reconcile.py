"""A stale voice claim is settled with Twilio's call list (To, StartTime>), never re-called."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from factories import add_customer, add_invoice
from pydantic import SecretStr
from sqlalchemy import Engine, select

from dunning.channels.twilio_voice import TwilioVoiceChannel
from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage
from dunning.db import session_scope
from dunning.db.models import Reminder
from dunning.devtools.fakes.server import run_fakes
from dunning.devtools.fakes.twilio import FALLBACK_FROM
from dunning.ledger import reconcile

CALLED, NOT_CALLED = "+4915100000021", "+4915100000022"


def _claimed(engine: Engine, cid: str, phone: str, claimed_at: dt.datetime) -> int:
    add_customer(engine, cid, phone=phone, voice_consent=True)
    invoice = add_invoice(engine, f"INV-{cid}", cid)
    with session_scope(engine) as s:
        row = Reminder(
            invoice_id=invoice,
            customer_id=cid,
            stage="final_notice",
            channel="voice",
            status="claimed",
            claimed_by="crashed-worker",
            claimed_at=claimed_at,
            lease_expires_at=claimed_at + dt.timedelta(seconds=1),
            attempts=1,
        )
        s.add(row)
        s.flush()
        return row.id


def test_stale_voice_claims_are_found_at_twilio_or_released(engine: Engine):
    now = dt.datetime.now(dt.UTC)
    called = _claimed(engine, "C-CALLED", CALLED, now - dt.timedelta(minutes=1))
    silent = _claimed(engine, "C-SILENT", NOT_CALLED, now - dt.timedelta(minutes=1))
    with run_fakes(seed=3, callbacks=False) as fakes:
        settings = ChannelSettings(webhook_public_url="http://127.0.0.1:9", send_concurrency=1)
        channel = TwilioVoiceChannel(
            settings,
            fakes.twilio_account_sid,
            SecretStr(fakes.twilio_auth_token),
            FALLBACK_FROM,
            base_url=fakes.base_url,
        )
        # The crashed worker had placed this call before it could record it.
        placed = channel.send_batch([OutboundMessage(called, "voice", CALLED, "Hello")])[0]
        deadline = time.monotonic() + 10
        while not all(c["start_time"] for c in fakes.calls()):
            assert time.monotonic() < deadline, "the fake call never started"
            time.sleep(0.02)
        counts = reconcile.reconcile_stale(
            engine, {"voice": channel.find_sent}, now + dt.timedelta(seconds=5)
        )
        assert len(fakes.calls()) == 1  # reconciling never places a call
    assert counts == {"found_sent": 1, "released": 1, "unknown": 0}
    with session_scope(engine) as s:
        rows = {r.id: (r.status, r.provider_message_id) for r in s.scalars(select(Reminder))}
    assert rows[called] == ("sent", placed.provider_message_id)
    assert rows[silent] == ("planned", None)


def test_a_voice_claim_twilio_cannot_be_asked_about_becomes_unknown(engine: Engine):
    now = dt.datetime.now(dt.UTC)
    rid = _claimed(engine, "C-X", CALLED, now - dt.timedelta(minutes=1))
    settings = ChannelSettings(webhook_public_url="http://127.0.0.1:9")
    channel = TwilioVoiceChannel(
        settings,
        "AC" + "0" * 32,
        SecretStr("x"),
        FALLBACK_FROM,
        base_url="http://127.0.0.1:9",
        timeout=1,
    )
    counts = reconcile.reconcile_stale(
        engine, {"voice": channel.find_sent}, now + dt.timedelta(seconds=5)
    )
    assert counts["unknown"] == 1
    with session_scope(engine) as s:
        assert s.get_one(Reminder, rid).status == "unknown"


@pytest.mark.parametrize("missing", ["from", "public_url"])
def test_calls_without_caller_id_or_public_url_are_a_config_error(missing: str):
    from dunning.errors import ConfigError

    settings = ChannelSettings(webhook_public_url=None if missing == "public_url" else "https://h")
    with pytest.raises(
        ConfigError,
        match="DUNNING_WEBHOOK_PUBLIC_URL"
        if missing == "public_url"
        else "DUNNING_VOICE_FROM_NUMBER",
    ):
        TwilioVoiceChannel(
            settings, "AC" + "0" * 32, SecretStr("x"), None if missing == "from" else FALLBACK_FROM
        )

"""Retention: message bodies and applied webhook payloads past their age are dropped."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import Engine, select

from dunning.config import reload_settings
from dunning.db import session_scope
from dunning.db.models import InboundMessage, Reminder, WebhookInbox
from dunning.privacy import apply_retention
from tests.factories import add_customer, add_invoice
from tests.security.prefect_api import read_artifacts

NOW = dt.datetime(2026, 11, 24, 3, 30, tzinfo=dt.UTC)


def _ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def _seed(engine: Engine) -> None:
    add_customer(engine, "C1")
    inv = add_invoice(engine, "INV-1", "C1")
    with session_scope(engine) as s:
        # (stage, sent_at, created_at): age by sent_at, else by created_at
        for stage, sent, created in [
            ("old_sent", _ago(91), _ago(200)),
            ("young_sent", _ago(89), _ago(200)),
            ("old_unsent", None, _ago(95)),
            ("young_unsent", None, _ago(1)),
        ]:
            s.add(
                Reminder(
                    invoice_id=inv,
                    customer_id="C1",
                    stage=stage,
                    channel="email",
                    status="sent" if sent else "skipped",
                    sent_at=sent,
                    created_at=created,
                    to_address="ada@example.com",
                    subject=f"subject {stage}",
                    body=f"body {stage}",
                )
            )
        s.add(
            InboundMessage(
                provider="twilio", provider_message_id="old", body="STOP", received_at=_ago(100)
            )
        )
        s.add(
            InboundMessage(
                provider="twilio", provider_message_id="young", body="PAID", received_at=_ago(10)
            )
        )
        # (event_id, status, applied_at, received_at)
        for event_id, status, applied, received in [
            ("applied_old", "applied", _ago(31), _ago(31)),
            ("applied_young", "applied", _ago(29), _ago(40)),
            ("ignored_old", "ignored", None, _ago(60)),
            ("pending_old", "pending", None, _ago(60)),
            ("error_old", "error", _ago(60), _ago(60)),
        ]:
            s.add(
                WebhookInbox(
                    provider="twilio",
                    event_id=event_id,
                    event_type="x",
                    payload=json.dumps({"From": "+14155550100"}),
                    status=status,
                    applied_at=applied,
                    received_at=received,
                )
            )


def _state(
    engine: Engine,
) -> tuple[dict[str, str | None], dict[str, str | None], dict[str, str | None]]:
    with session_scope(engine) as s:
        bodies = {r.stage: r.body for r in s.scalars(select(Reminder))}
        subjects = {r.stage: r.subject for r in s.scalars(select(Reminder))}
        payloads = {w.event_id: w.payload for w in s.scalars(select(WebhookInbox))}
    return bodies, subjects, payloads


def test_defaults_drop_bodies_after_90_days_and_applied_payloads_after_30(engine: Engine) -> None:
    _seed(engine)
    counts = apply_retention(engine, NOW)
    assert counts.as_dict() == {"reminder_bodies": 2, "inbound_bodies": 1, "webhook_payloads": 2}
    bodies, subjects, payloads = _state(engine)
    assert bodies == {
        "old_sent": None,
        "young_sent": "body young_sent",
        "old_unsent": None,
        "young_unsent": "body young_unsent",
    }
    assert subjects["old_sent"] is None and subjects["young_sent"] == "subject young_sent"
    assert {k for k, v in payloads.items() if v is None} == {"applied_old", "ignored_old"}
    with session_scope(engine) as s:
        assert {m.provider_message_id: m.body for m in s.scalars(select(InboundMessage))} == {
            "old": None,
            "young": "PAID",
        }
        # accounting facts stay
        assert {r.stage: r.status for r in s.scalars(select(Reminder))}["old_sent"] == "sent"
    # a second pass finds nothing more to remove
    assert apply_retention(engine, NOW).as_dict() == {
        "reminder_bodies": 0,
        "inbound_bodies": 0,
        "webhook_payloads": 0,
    }


def test_settings_come_from_the_environment(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(engine)
    monkeypatch.setenv("DUNNING_RETENTION_BODY_DAYS", "300")
    monkeypatch.setenv("DUNNING_RETENTION_PAYLOAD_DAYS", "10")
    reload_settings()
    counts = apply_retention(engine, NOW)
    assert counts.as_dict() == {"reminder_bodies": 0, "inbound_bodies": 0, "webhook_payloads": 3}


def test_explicit_days_override_and_naive_now_is_refused(engine: Engine) -> None:
    _seed(engine)
    with pytest.raises(ValueError, match="timezone-aware"):
        apply_retention(engine, NOW.replace(tzinfo=None))
    assert apply_retention(engine, NOW, body_days=0, payload_days=1000).reminder_bodies == 4


@pytest.mark.prefect
def test_the_retention_flow_applies_the_setting(prefect_server: None, engine: Engine) -> None:
    from dunning.flows.retention import retention

    _seed(engine)
    state = retention(now=NOW, return_state=True)
    assert state.is_completed()
    assert state.result() == {"reminder_bodies": 2, "inbound_bodies": 1, "webhook_payloads": 2}
    flow_run_id = str(state.state_details.flow_run_id)
    arts = read_artifacts(flow_run_id)
    assert [a["key"] for a in arts] == ["retention-summary"]
    assert "| 90 days | reminder subjects/bodies | 2 |" in arts[0]["data"]

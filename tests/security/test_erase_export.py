"""Erasure and export of one customer, through the real CLI against SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from dunning.cli import _load_commands, app
from dunning.db import session_scope
from dunning.db.models import (
    Customer,
    InboundMessage,
    Invoice,
    Payment,
    Reminder,
    WebhookInbox,
)
from dunning.privacy import erase_customer, payload_mentions
from tests.factories import add_customer, add_invoice, add_payment

SENT = dt.datetime(2026, 11, 2, 15, 0, tzinfo=dt.UTC)
runner = CliRunner()
_load_commands()


def _portfolio(engine: Engine) -> dict[str, int]:
    """C1 with two invoices, a payment, sent/planned reminders, a reply and inbox rows; C2 too."""
    add_customer(engine, "C1", name="Ada Lovelace", email="ada@example.com", phone="+14155550100")
    add_customer(engine, "C2", name="Bo Other", email="bo@example.org", phone="+14155550199")
    inv = add_invoice(engine, "INV-1", "C1")
    add_invoice(engine, "INV-2", "C1", amount=Decimal("40.00"))
    other = add_invoice(engine, "INV-9", "C2")
    add_payment(engine, inv, "30.00", "pay-1")
    ids: dict[str, int] = {}
    with session_scope(engine) as s:
        for key, invoice_id, customer, channel, status, msg, to in [
            ("email", inv, "C1", "email", "delivered", "SGabc", "ada@example.com"),
            ("sms", inv, "C1", "sms", "sent", "SM111", "+14155550100"),
            ("planned", inv, "C1", "email", "planned", None, None),
            ("other", other, "C2", "sms", "sent", "SM999", "+14155550199"),
            # Sent in the same SendGrid bulk request as C1's email: one shared X-Message-Id.
            ("other_email", other, "C2", "email", "sent", "SGabc", "bo@example.org"),
        ]:
            r = Reminder(
                invoice_id=invoice_id,
                customer_id=customer,
                stage="due" if key != "planned" else "overdue_1",
                channel=channel,
                status=status,
                provider_message_id=msg,
                to_address=to,
                subject="Invoice INV-1" if channel == "email" else None,
                body=f"Dear customer, pay {to}",
                balance_due=Decimal("70.00"),
                currency="USD",
                attempts=1 if msg else 0,
                sent_at=SENT if msg else None,
            )
            s.add(r)
            s.flush()
            ids[key] = r.id
        s.add(
            InboundMessage(
                provider="twilio",
                provider_message_id="SMin1",
                from_address="+14155550100",
                customer_id="C1",
                reminder_id=ids["sms"],
                invoice_id=inv,
                body="PAID yesterday",
                keyword="paid",
                received_at=SENT,
            )
        )
        payloads = {
            "ev-sg": (
                "sendgrid",
                "applied",
                {
                    "event": "delivered",
                    "sg_event_id": "ev-sg",
                    "email": "ADA@example.com",
                    "reminder_id": str(ids["email"]),
                },
            ),
            "ev-sg-id": (
                "sendgrid",
                "pending",
                {"event": "open", "sg_event_id": "ev-sg-id", "sg_message_id": "SGabc.filter0001"},
            ),
            "SM111:delivered": (
                "twilio",
                "applied",
                {"MessageSid": "SM111", "MessageStatus": "delivered"},
            ),
            "SMin1": (
                "twilio",
                "applied",
                {"MessageSid": "SMin1", "From": "+14155550100", "Body": "PAID yesterday"},
            ),
            "SM999:delivered": (
                "twilio",
                "applied",
                {"MessageSid": "SM999", "MessageStatus": "delivered"},
            ),
            "ev-bulk-c2": (
                "sendgrid",
                "pending",
                {
                    "event": "delivered",
                    "sg_event_id": "ev-bulk-c2",
                    "sg_message_id": "SGabc.filter0002",
                    "email": "bo@example.org",
                    "reminder_id": str(ids["other_email"]),
                },
            ),
            # reminder_id 1 of C1 must not match reminder 11, 21...: the id is compared exactly
            "ev-near": (
                "sendgrid",
                "applied",
                {"event": "open", "sg_event_id": "ev-near", "reminder_id": f"{ids['email']}0"},
            ),
        }
        for event_id, (provider, status, body) in payloads.items():
            s.add(
                WebhookInbox(
                    provider=provider,
                    event_id=event_id,
                    event_type=str(body.get("event", "x")),
                    payload=json.dumps(body),
                    status=status,
                    received_at=SENT,
                )
            )
    return ids


def _payloads(engine: Engine) -> dict[str, tuple[str | None, str]]:
    with session_scope(engine) as s:
        rows = s.execute(select(WebhookInbox.event_id, WebhookInbox.payload, WebhookInbox.status))
        return {r.event_id: (r.payload, r.status) for r in rows}


def test_erase_removes_personal_data_and_keeps_accounting(engine: Engine) -> None:
    ids = _portfolio(engine)
    result = runner.invoke(app, ["customer", "erase", "C1", "--yes", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["customer_id"] == "C1"
    assert (
        report["reminders"],
        report["cancelled_reminders"],
        report["inbound_messages"],
        report["webhook_payloads"],
    ) == (3, 1, 1, 4)
    with session_scope(engine) as s:
        c1 = s.get_one(Customer, "C1")
        assert (c1.name, c1.email, c1.phone) == (None, None, None)
        assert c1.erased_at is not None and c1.country == "US"
        rows = {r.id: r for r in s.scalars(select(Reminder))}
        for key in ("email", "sms", "planned"):
            r = rows[ids[key]]
            assert (r.to_address, r.subject, r.body) == (None, None, None)
            assert r.balance_due == Decimal("70.00") and r.currency == "USD"
        assert rows[ids["email"]].status == "delivered" and rows[ids["email"]].sent_at == SENT
        assert rows[ids["sms"]].attempts == 1
        assert (rows[ids["planned"]].status, rows[ids["planned"]].reason) == (
            "skipped",
            "customer erased",
        )
        # the other customer is untouched
        assert rows[ids["other"]].to_address == "+14155550199"
        assert s.get_one(Customer, "C2").email == "bo@example.org"
        reply = s.scalars(select(InboundMessage)).one()
        assert (reply.body, reply.from_address, reply.keyword) == (None, None, "paid")
        assert s.scalar(select(func.count(Invoice.id))) == 3
        assert s.scalar(select(func.sum(Payment.amount))) == Decimal("30.00")
    inbox = _payloads(engine)
    for gone in ("ev-sg", "ev-sg-id", "SM111:delivered", "SMin1"):
        assert inbox[gone][0] is None
    assert inbox["ev-sg-id"][1] == "ignored"  # pending, cannot be applied without payload
    assert inbox["SM999:delivered"][0] is not None and inbox["ev-near"][0] is not None
    # C2's event from the shared bulk request keeps its payload and stays pending.
    assert inbox["ev-bulk-c2"][0] is not None and inbox["ev-bulk-c2"][1] == "pending"


def test_erase_twice_keeps_the_first_timestamp(engine: Engine) -> None:
    _portfolio(engine)
    first = erase_customer(engine, "C1", SENT)
    second = erase_customer(engine, "C1", SENT + dt.timedelta(days=1))
    assert second.erased_at == first.erased_at == SENT
    assert second.webhook_payloads == 0 and second.cancelled_reminders == 0


def test_erase_and_export_refuse_an_unknown_id(engine: Engine) -> None:
    add_customer(engine, "C1")
    for args in (["customer", "erase", "NOPE", "--yes"], ["customer", "export", "NOPE"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1
        assert "customer 'NOPE' does not exist" in result.stderr
        assert "Traceback" not in result.output
    with session_scope(engine) as s:
        assert s.get_one(Customer, "C1").email == "ada@example.com"


def test_erase_without_yes_in_a_pipe_refuses_and_changes_nothing(engine: Engine) -> None:
    add_customer(engine, "C1")
    result = runner.invoke(app, ["customer", "erase", "C1"])
    assert result.exit_code == 1 and "pass --yes" in result.stderr
    with session_scope(engine) as s:
        assert s.get_one(Customer, "C1").erased_at is None


def test_export_prints_one_document_with_everything_about_the_customer(engine: Engine) -> None:
    ids = _portfolio(engine)
    result = runner.invoke(app, ["customer", "export", "C1"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["customer"]["email"] == "ada@example.com"
    assert sorted(i["invoice_number"] for i in doc["invoices"]) == ["INV-1", "INV-2"]
    assert [p["amount"] for p in doc["payments"]] == ["30.0000"]
    assert doc["payment_attempts"] == []
    assert sorted(r["id"] for r in doc["reminders"]) == sorted(
        ids[k] for k in ("email", "sms", "planned")
    )
    assert [m["body"] for m in doc["inbound_messages"]] == ["PAID yesterday"]
    assert "bo@example.org" not in result.stdout and "INV-9" not in result.stdout


def test_payload_matching_is_exact() -> None:
    addrs, msgs, rids = {"ada@example.com", "+14155550100"}, {"SM1"}, {"7"}
    assert payload_mentions('{"To": "+14155550100"}', addrs, msgs, rids)
    assert payload_mentions('{"a": {"b": ["Ada@Example.com"]}}', addrs, msgs, rids)
    assert payload_mentions('{"sg_message_id": "SM1.filter"}', addrs, msgs, rids)
    assert payload_mentions('{"reminder_id": 7}', addrs, msgs, rids)
    assert not payload_mentions('{"reminder_id": "77", "x": "SM10"}', addrs, msgs, rids)
    # Another recipient of the same bulk request: same message id, its own reminder id.
    assert not payload_mentions(
        '{"sg_message_id": "SM1.filter2", "reminder_id": "8"}', addrs, msgs, rids
    )
    assert not payload_mentions('{"note": "+141555501000"}', addrs, msgs, rids)
    assert payload_mentions("not json ada@example.com", addrs, msgs, rids)

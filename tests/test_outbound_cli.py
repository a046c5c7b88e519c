"""``dunning subscribers add|list|remove|replay|deliver`` and tracking events in the outbox."""

from __future__ import annotations

import json

from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from dunning.cli import _load_commands, app
from dunning.db import session_scope
from dunning.db.models import Reminder
from dunning.tracking import apply_inbox
from dunning.webhooks import store_records
from dunning.webhooks.verify import InboxRecord
from tests.factories import add_customer, add_invoice
from tests.outbound_support import SECRET, Receiver, free_port, receiver

runner = CliRunner()


def cli(*args: str) -> Result:
    _load_commands()
    return runner.invoke(app, list(args))


def test_subscribers_commands_validate_mask_deliver_and_replay(engine: Engine) -> None:
    bad = cli("subscribers", "add", "http://example.com/h", "--secret", SECRET)
    assert bad.exit_code == 1 and "https" in bad.output
    bad = cli("subscribers", "add", "https://example.com/h", "--secret", "nope")
    assert bad.exit_code == 1 and "whsec_" in bad.output
    bad = cli(
        "subscribers",
        "add",
        "https://example.com/h",
        "--secret",
        SECRET,
        "--events",
        "reminder.sent,invoice.paid",
    )
    assert bad.exit_code == 1 and "invoice.paid" in bad.output
    rx = Receiver(free_port())
    added = cli(
        "subscribers", "add", rx.url, "--events", "reminder.delivered", "--secret", SECRET, "--json"
    )
    assert added.exit_code == 0, added.output
    sub_id = json.loads(added.stdout)["id"]
    # A SendGrid delivered event applied by tracking writes reminder.delivered.
    add_customer(engine, "C1")
    invoice = add_invoice(engine, "INV-1", "C1")
    with session_scope(engine) as s:
        row = Reminder(
            invoice_id=invoice,
            customer_id="C1",
            stage="overdue_1",
            channel="email",
            status="sent",
            provider_message_id="abc",
        )
        s.add(row)
        s.flush()
        rid = row.id
    event = {
        "event": "delivered",
        "sg_event_id": "ev-1",
        "reminder_id": str(rid),
        "sg_message_id": "abc.filter1",
        "email": "ada@example.com",
        "timestamp": 1764000000,
    }
    store_records(engine, [InboxRecord("sendgrid", "ev-1", "delivered", json.dumps(event))])
    assert apply_inbox(engine).as_dict() == {"delivered": 1}
    with receiver(rx):
        done = cli("subscribers", "deliver", "--json")
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout)["delivered"] == 1
        listed = cli("subscribers", "list", "--json")
        [row_out] = json.loads(listed.stdout)
        assert (row_out["delivered"], row_out["dead"]) == (1, 0)
        assert SECRET not in listed.stdout and SECRET not in cli("subscribers", "list").stdout
        bad_since = cli("subscribers", "replay", "--since", "yesterday")
        assert bad_since.exit_code == 1 and "--since" in bad_since.output
        replayed = cli("subscribers", "replay", "--since", "2020-01-01T00:00:00Z", "--json")
        assert json.loads(replayed.stdout)["queued"] == 1
        assert json.loads(cli("subscribers", "deliver", "--json").stdout)["delivered"] == 1
    assert [e["type"] for e in rx.verified] == ["reminder.delivered"] * 2
    assert rx.verified[0]["id"] == rx.verified[1]["id"]  # the same webhook-id on replay
    assert "ada@example.com" not in json.dumps(rx.verified)
    assert cli("subscribers", "remove", str(sub_id)).exit_code == 0
    gone = cli("subscribers", "remove", str(sub_id))
    assert gone.exit_code == 1 and "no subscriber" in gone.output

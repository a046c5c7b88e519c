"""One message per customer (policy consolidate = "customer"): claim, send and record a
customer's reminders together, on SQLite and PostgreSQL, with the real planner, ledger, outbox
channel and webhook appliers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select

from dunning import ledger
from dunning.channels.outbox import OutboxChannel
from dunning.config.channels import ChannelSettings
from dunning.core.messages import StaleClaim
from dunning.db import session_scope
from dunning.db.models import Reminder
from dunning.delivery import deliver_batch
from dunning.flows.payment_reminders import consolidated_customers, pack_customers
from dunning.ledger import reconcile
from dunning.policy import Policy, load_policy, plan
from dunning.policy.loader import DEFAULT_POLICY_PATH
from dunning.portfolio import load_portfolio
from dunning.render import compose, compose_group
from dunning.tracking.apply import apply_sendgrid, apply_twilio_status
from tests.factories import add_customer, add_invoice, add_payment

# Tuesday 24 Nov 2026, 15:00 UTC = 10:00 in New York: inside the default send window.
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
SETTINGS = ChannelSettings(
    unsubscribe_secret=SecretStr("s3cret"),
    unsubscribe_base_url="https://u.example/x",
    postal_address="1 Example Street, 12345 Springfield",
)


def _policy(tmp_path: Path, head: str = "", tail: str = "") -> Policy:
    """The default policy with top-level keys ``head`` and tables ``tail`` added."""
    path = tmp_path / "policy.toml"
    default = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    path.write_text(f"{head}\n{default}\n{tail}\n", encoding="utf-8")
    return load_policy(path)


def _three_invoices(engine: Engine) -> dict[str, int]:
    """Customer C1 (New York, SMS consent) with three overdue invoices in two currencies."""
    add_customer(engine, "C1")
    return {
        "INV-A": add_invoice(
            engine, "INV-A", "C1", due_on=dt.date(2026, 11, 1), payment_link="https://p/a"
        ),
        "INV-B": add_invoice(
            engine,
            "INV-B",
            "C1",
            due_on=dt.date(2026, 11, 10),
            amount=Decimal("250.00"),
            payment_link="https://p/b",
        ),
        "INV-C": add_invoice(
            engine,
            "INV-C",
            "C1",
            due_on=dt.date(2026, 11, 15),
            currency="EUR",
            amount=Decimal("80.00"),
            payment_link="https://p/c",
        ),
    }


def _plan_ids(engine: Engine, policy: Policy) -> list[int]:
    lines = plan(load_portfolio(engine), AS_OF, policy)
    return ledger.record_plan(engine, lines[lines["action"] == "send"], as_of=AS_OF)


def _run(engine: Engine, policy: Policy, tmp_path: Path, ids: list[int] | None = None):
    ids = _plan_ids(engine, policy) if ids is None else ids
    per_customer = policy.consolidate == "customer"
    outbox = tmp_path / "outbox"
    return deliver_batch(
        engine,
        ids,
        claimer="run-test",
        channels={
            "email": OutboxChannel("email", outbox, SETTINGS),
            "sms": OutboxChannel("sms", outbox, SETTINGS),
        },
        compose=partial(compose, settings=SETTINGS),
        compose_group=partial(compose_group, settings=SETTINGS) if per_customer else None,
        as_of=AS_OF,
    ), outbox


def _rows(engine: Engine) -> list[Reminder]:
    with session_scope(engine) as s:
        rows = list(s.scalars(select(Reminder).order_by(Reminder.id)))
        s.expunge_all()
    return rows


def _files(outbox: Path, channel: str) -> list[Path]:
    return sorted((outbox / channel).glob("*")) if (outbox / channel).exists() else []


def test_one_email_and_one_sms_per_customer_in_customer_mode(engine, tmp_path):
    invoices = _three_invoices(engine)
    policy = _policy(tmp_path, 'consolidate = "customer"')
    result, outbox = _run(engine, policy, tmp_path)
    assert (result.claimed, result.sent, result.failed) == (6, 6, 0)
    [_], [sms] = _files(outbox, "email"), _files(outbox, "sms")
    rows = _rows(engine)
    assert len(rows) == 6 and {r.status for r in rows} == {"sent"}
    for channel in ("email", "sms"):
        mine = [r for r in rows if r.channel == channel]
        # the ledger stays one row per invoice; the rows share one provider message
        assert len({r.invoice_id for r in mine}) == 3
        assert len({r.provider_message_id for r in mine}) == 1
        # the lead is the most overdue invoice (all three at overdue_1, their first contact)
        lead = next(r for r in mine if r.invoice_id == invoices["INV-A"])
        assert {r.message_group for r in mine} == {lead.id}
        assert lead.provider_message_id == f"outbox-{lead.id}"
        assert len({r.body for r in mine}) == 1
    body = next(r.body for r in rows if r.channel == "email")
    assert body is not None
    for number in ("INV-A", "INV-B", "INV-C"):
        assert number in body and number in sms.read_text()
    # the true days overdue of each invoice, one total per currency
    assert "Overdue: 23 days" in body and "Overdue: 14 days" in body and "Overdue: 9 days" in body
    assert "Total due: $350.00" in body and "Total due: €80.00" in body
    assert "3 invoices are unpaid, $350.00 + €80.00 in total" in sms.read_text()
    # the plan sees every row as sent: re-running the same as-of sends nothing
    assert _plan_ids(engine, policy) == []
    again, _ = _run(engine, policy, tmp_path)
    assert again.sent == 0 and len(_files(outbox, "email")) == 1


def test_invoice_mode_sends_one_message_per_invoice(engine, tmp_path):
    _three_invoices(engine)
    result, outbox = _run(engine, load_policy(), tmp_path)
    # three emails; one SMS (max_sms_per_customer_per_day = 1 defers the other two)
    assert result.sent == 4
    assert len(_files(outbox, "email")) == 3 and len(_files(outbox, "sms")) == 1
    rows = _rows(engine)
    assert len({r.provider_message_id for r in rows}) == 4
    assert {r.message_group for r in rows} == {None}


def test_an_invoice_paid_between_plan_and_claim_drops_out_of_the_message(engine, tmp_path):
    invoices = _three_invoices(engine)
    policy = _policy(tmp_path, 'consolidate = "customer"')
    ids = _plan_ids(engine, policy)
    add_payment(engine, invoices["INV-B"], "250.00", "pay-b")  # paid after planning
    result, outbox = _run(engine, policy, tmp_path, ids)
    assert result.skipped == 2 and result.skip_reasons == {"paid": 2} and result.sent == 4
    [email] = _files(outbox, "email")
    assert "INV-B" not in email.read_text() and "INV-A" in email.read_text()
    paid = [r for r in _rows(engine) if r.invoice_id == invoices["INV-B"]]
    assert {(r.status, r.reason, r.provider_message_id) for r in paid} == {
        ("skipped", "paid", None)
    }


def test_a_failure_fails_every_row_of_the_message(engine, tmp_path):
    _three_invoices(engine)
    policy = _policy(tmp_path, 'consolidate = "customer"')
    ids = _plan_ids(engine, policy)

    class Refusing(OutboxChannel):
        def send_batch(self, messages):
            from dunning.core.messages import SendResult

            return [
                SendResult(m.reminder_id, False, "outbox", error_code="21211", error="invalid")
                for m in messages
            ]

    outbox = tmp_path / "outbox"
    result = deliver_batch(
        engine,
        ids,
        claimer="run-test",
        channels={
            "email": OutboxChannel("email", outbox, SETTINGS),
            "sms": Refusing("sms", outbox, SETTINGS),
        },
        compose=partial(compose, settings=SETTINGS),
        compose_group=partial(compose_group, settings=SETTINGS),
        as_of=AS_OF,
    )
    assert (result.sent, result.failed) == (3, 3)
    sms = [r for r in _rows(engine) if r.channel == "sms"]
    assert {(r.status, r.error_code) for r in sms} == {("failed_permanent", "21211")}


def test_webhook_events_update_every_row_of_the_message(engine, tmp_path):
    _three_invoices(engine)
    policy = _policy(tmp_path, 'consolidate = "customer"')
    _run(engine, policy, tmp_path)
    rows = _rows(engine)
    email_lead = next(r for r in rows if r.channel == "email" and r.id == r.message_group)
    sms_sid = next(r.provider_message_id for r in rows if r.channel == "sms")
    at = AS_OF + dt.timedelta(minutes=5)
    with session_scope(engine) as s:
        kinds = apply_sendgrid(
            s,
            {
                "event": "delivered",
                "sg_event_id": "ev-1",
                "sg_message_id": f"{email_lead.provider_message_id}.filter",
                "reminder_id": str(email_lead.id),
                "email": "ada@example.com",
                "timestamp": int(at.timestamp()),
            },
            at,
        )
        assert kinds.count("delivered") == 3
        assert apply_twilio_status(s, str(sms_sid), "delivered", None, at).count("delivered") == 3
    assert {r.status for r in _rows(engine)} == {"delivered"}


def test_a_message_killed_after_its_claim_is_settled_whole(engine, tmp_path):
    from dunning.delivery import customer_messages

    _three_invoices(engine)
    policy = _policy(tmp_path, 'consolidate = "customer"')
    ids = _plan_ids(engine, policy)
    # The claim of a grouped batch, then the process dies (no send recorded).
    past = AS_OF - dt.timedelta(hours=1)
    out = ledger.claim(
        engine, ids, claimer="run-dead", lease_seconds=60, now=past, group=customer_messages
    )
    assert sorted(len(g) for g in out.groups) == [3, 3]
    sms_lead = next(g[0] for g in out.groups if g[0].channel == "sms")
    asked: list[int] = []

    def twilio_has_it(claim: StaleClaim) -> str | None:
        asked.append(claim.reminder_id)
        return "SM-found"

    def sendgrid_cannot_say(claim: StaleClaim) -> str | None:
        asked.append(claim.reminder_id)
        return None

    counts = reconcile.reconcile_stale(
        engine, {"sms": twilio_has_it, "email": sendgrid_cannot_say}, now=AS_OF
    )
    # one question per message (about its lead), every row settled alike
    assert len(asked) == 2 and sms_lead.reminder_id in asked
    assert counts == {"found_sent": 3, "released": 3, "unknown": 0}
    rows = _rows(engine)
    assert {(r.status, r.provider_message_id) for r in rows if r.channel == "sms"} == {
        ("sent", "SM-found")
    }
    email = [r for r in rows if r.channel == "email"]
    assert {(r.status, r.message_group) for r in email} == {("planned", None)}
    # the next delivery sends the released email once, as one message; the SMS never again
    result, outbox = _run(engine, policy, tmp_path, ids)
    assert result.sent == 3 and len(_files(outbox, "email")) == 1 and not _files(outbox, "sms")


def test_consolidate_per_segment_override(engine, tmp_path):
    _three_invoices(engine)
    lines = plan(load_portfolio(engine), AS_OF, load_policy())
    sends = lines[lines["action"] == "send"]
    segment = str(sends["segment"].iloc[0])
    only_this = _policy(tmp_path, tail=f'[segments.consolidate]\n{segment} = "customer"')
    assert consolidated_customers(sends, only_this) == {"C1"}
    all_but_this = _policy(
        tmp_path, 'consolidate = "customer"', f'[segments.consolidate]\n{segment} = "invoice"'
    )
    assert consolidated_customers(sends, all_but_this) == set()
    assert consolidated_customers(sends, load_policy()) == set()


def test_customers_are_packed_whole_into_batches():
    groups = [[1, 2], [3], [4, 5, 6]]
    assert pack_customers(groups, None, 10) == [[[1, 2]], [[3]], [[4, 5, 6]]]
    assert pack_customers(groups, None, 2) == [[[1, 2], [3]], [[4, 5, 6]]]
    assert pack_customers(groups, 1, 2) == [[[1, 2], [3]], [[4, 5, 6]]]
    assert pack_customers([], None, 2) == []


def _task_run_names(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterName,
    )

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=" batch ")),
            limit=200,
            offset=0,
        )
    return sorted(r.name for r in runs)


@pytest.mark.prefect
@pytest.mark.parametrize(("mode", "emails"), [("customer", 1), ("invoice", 3)])
def test_a_run_sends_one_email_per_customer_in_customer_mode(
    prefect_server, engine, tmp_path, monkeypatch, mode, emails
):
    from dunning.flows.payment_reminders import payment_reminders

    _three_invoices(engine)
    add_customer(engine, "C2", email="bo@example.org", phone=None, sms_consent=False)
    add_invoice(engine, "INV-D", "C2", due_on=dt.date(2026, 11, 12))
    path = tmp_path / "policy.toml"
    path.write_text(
        f'consolidate = "{mode}"\n' + DEFAULT_POLICY_PATH.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    first = payment_reminders(as_of=AS_OF, policy_path=path)
    # customer mode: 3 email + 3 SMS rows of C1 (one message each) and C2's email; invoice
    # mode: 3 emails, 1 SMS (the other two wait: sms_daily_cap) and C2's email
    assert first.counts()["sent"] == (7 if mode == "customer" else 5)
    assert first.counts()["failed"] == 0
    outbox = tmp_path / "home" / "outbox"
    mails = _files(outbox, "email")
    assert len([p for p in mails if "INV-D" not in p.read_text()]) == emails
    assert len(mails) == emails + 1  # and C2's own email
    sms = [p for p in _files(outbox, "sms")]
    assert len(sms) == 1  # one SMS: the whole message, or the daily cap in invoice mode
    names = _task_run_names(str(first.flow_run_id))
    if mode == "customer":
        # the fan-out unit is the customer: one task per customer, counting customers
        assert set(names) in (
            {"deliver email+sms customers batch 1/2 (1)", "deliver email customers batch 2/2 (1)"},
            {"deliver email customers batch 1/2 (1)", "deliver email+sms customers batch 2/2 (1)"},
        )
    else:
        assert len(names) == 4 and all("customers" not in n for n in names)
    again = payment_reminders(as_of=AS_OF, policy_path=path)
    assert again.counts()["sent"] == 0


def test_preview_shows_the_customers_one_message(engine, tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from dunning.cli import _load_commands, app
    from dunning.config import reload_settings

    _three_invoices(engine)
    _load_commands()
    path = tmp_path / "policy.toml"
    path.write_text(
        'consolidate = "customer"\n' + DEFAULT_POLICY_PATH.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    monkeypatch.setenv("DUNNING_POLICY_PATH", str(path))
    reload_settings()
    args = ["preview", "--invoice", "INV-B", "--as-of", AS_OF.isoformat()]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["channel"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert rows["email"]["template"] == "_customer/email.en", json.dumps(
        {k: str(v) for k, v in rows["email"].items() if k not in ("html", "text", "headers")}
    )
    assert sorted(rows["email"]["invoices"]) == ["INV-A", "INV-B", "INV-C"]
    assert "Total due: $350.00" in rows["email"]["text"]
    assert rows["sms"]["template"] == "_customer/sms.en"
    assert "INV-A, INV-B, INV-C" in rows["sms"]["text"]
    human = CliRunner().invoke(app, args)
    assert "one message for 3 invoices (consolidate = customer)" in human.stdout
    monkeypatch.delenv("DUNNING_POLICY_PATH")
    reload_settings()
    single = CliRunner().invoke(app, [*args, "--json"])
    email = json.loads(single.stdout.splitlines()[0])
    assert email["template"] == "overdue_1/email.en" and email["invoices"] == ["INV-B"]

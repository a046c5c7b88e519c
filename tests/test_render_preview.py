"""`dunning preview`: the real CLI over a real database (SQLite, and PostgreSQL when set)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from factories import add_customer, add_invoice, add_payment
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from dunning.cli import _load_commands, app
from dunning.db import session_scope
from dunning.db.models import Reminder
from dunning.policy import load_policy
from dunning.policy.ladder import stage_reached

runner = CliRunner()
_load_commands()

AS_OF = "2026-11-10T12:00:00Z"  # the factories' invoice is due 2026-11-01: 9 days overdue


def preview(*args: str) -> Result:
    return runner.invoke(app, ["preview", *args])


def _seed(engine: Engine, **customer: object) -> int:
    add_customer(engine, "C1", **customer)
    invoice_id = add_invoice(engine, "INV-1", "C1", currency="EUR", amount=Decimal("500.00"))
    add_payment(engine, invoice_id, "120.00", "pay-1")
    return invoice_id


def test_the_stage_reached_follows_the_ladder() -> None:
    policy = load_policy()
    assert stage_reached(policy, -30) == "pre_due"
    assert stage_reached(policy, 0) == "due"
    assert stage_reached(policy, 9) == "overdue_2"
    assert stage_reached(policy, 400) == "final_notice"


def test_preview_both_channels_as_json(engine: Engine) -> None:
    _seed(engine, locale="de_DE", name="Grete {{ 7*7 }}")
    result = preview("--invoice", "INV-1", "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    # the plan's stage: a never-reminded invoice's first contact is overdue_1
    assert [(r["channel"], r["stage"], r["template"]) for r in rows] == [
        ("email", "overdue_1", "overdue_1/email.de"),
        ("sms", "overdue_1", "overdue_1/sms.de"),
    ]
    # 07:00 in New York: a run would hold both until the window opens at 09:00
    assert [r["plan_action"] for r in rows] == ["defer", "defer"]
    email = rows[0]
    assert "380,00\xa0€ (von ursprünglich 500,00\xa0€)" in email["text"]  # balance after payment
    assert "Grete {{ 7*7 }}" in email["text"]
    assert "9 Tage überfällig" in email["text"]
    assert Path(email["html_path"]).read_text(encoding="utf-8") == email["html"]
    assert rows[1]["text"].endswith("Antworten Sie STOP zum Abmelden")
    assert rows[1]["sms_encoding"] == "GSM-7" and rows[1]["sms_segments"] >= 1


def test_preview_uses_the_ledger_reminder_id(engine: Engine) -> None:
    invoice_id = _seed(engine)
    with session_scope(engine) as s:
        row = Reminder(
            invoice_id=invoice_id, customer_id="C1", stage="final_notice", channel="email"
        )
        s.add(row)
        s.flush()
        rid = row.id
    result = preview(
        "--invoice",
        "INV-1",
        "--stage",
        "final_notice",
        "--channel",
        "email",
        "--as-of",
        AS_OF,
        "--json",
    )
    assert result.exit_code == 0, result.output
    (row_json,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert f"/{rid}-" in row_json["headers"]["List-Unsubscribe"]
    assert row_json["template"] == "final_notice/email.en"


def test_preview_human_output(engine: Engine) -> None:
    _seed(engine)
    result = preview(
        "--invoice", "INV-1", "--channel", "sms", "--stage", "final_notice_r2", "--as-of", AS_OF
    )
    assert result.exit_code == 0, result.output
    assert "To: +14155550100" in result.stdout
    assert "FINAL NOTICE, invoice INV-1 is 9 days overdue, €380.00 due." in result.stdout


def test_preview_errors_name_the_input(engine: Engine) -> None:
    _seed(engine, email=None)
    missing = preview("--invoice", "INV-404")
    assert missing.exit_code == 1 and "invoice 'INV-404' is not in the database" in missing.output
    bad_stage = preview("--invoice", "INV-1", "--stage", "overdue_9")
    assert bad_stage.exit_code == 1 and "--stage 'overdue_9' is not a stage" in bad_stage.output
    bad_channel = preview("--invoice", "INV-1", "--channel", "fax")
    assert bad_channel.exit_code == 1 and "--channel 'fax'" in bad_channel.output
    no_email = preview("--invoice", "INV-1", "--channel", "email", "--as-of", AS_OF)
    assert no_email.exit_code == 1 and "has no email address" in no_email.output
    both = preview("--invoice", "INV-1", "--as-of", AS_OF, "--json")
    assert both.exit_code == 0
    assert [json.loads(x)["channel"] for x in both.stdout.splitlines()] == ["sms"]


def test_preview_as_of_is_validated(engine: Engine) -> None:
    _seed(engine)
    result = preview("--invoice", "INV-1", "--as-of", "yesterday")
    assert result.exit_code == 1 and "--as-of 'yesterday'" in result.output


def test_preview_voice_prints_the_twiml_of_the_call(engine: Engine) -> None:
    _seed(engine, locale="de_DE", country="DE", timezone="Europe/Berlin", phone="+4915112345678")
    result = preview(
        "--invoice", "INV-1", "--channel", "voice", "--stage", "final_notice", "--as-of", AS_OF
    )
    assert result.exit_code == 0, result.output
    assert '<Say language="de-DE" voice="Polly.Vicki">' in result.stdout
    assert '<Gather action="/webhooks/twilio/voice?reminder_id=0"' in result.stdout
    assert "I N V, 1" in result.stdout and "Drücken Sie die 2" in result.stdout
    assert "Answering machine:" in result.stdout and "<Hangup />" in result.stdout
    data = json.loads(
        preview(
            "--invoice",
            "INV-1",
            "--channel",
            "voice",
            "--stage",
            "final_notice",
            "--as-of",
            AS_OF,
            "--json",
        ).stdout
    )
    assert data["language"] == "de-DE" and data["twiml"].startswith("<?xml")
    assert data["offer_link"] is True and data["warnings"] == []


def test_preview_voice_says_when_the_call_falls_back_to_english(engine: Engine) -> None:
    _seed(engine, locale="sv_SE", country="SE", timezone="Europe/Stockholm", sms_consent=False)
    result = preview("--invoice", "INV-1", "--channel", "voice", "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["language"] == "en-US" and data["offer_link"] is False
    assert data["warnings"] == ["no voice template in 'sv': the call speaks English"]
    assert "Press 2" not in data["twiml"]


def test_preview_shows_what_plan_would_do_and_its_exact_stage(engine: Engine) -> None:
    import datetime as dt

    from dunning.policy import plan
    from dunning.portfolio import load_portfolio

    invoice_id = _seed(engine, sms_consent=False)
    with session_scope(engine) as s:  # overdue_1 went out a week ago
        s.add(
            Reminder(
                invoice_id=invoice_id,
                customer_id="C1",
                stage="overdue_1",
                channel="email",
                status="delivered",
                attempts=1,
                planned_for=dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC),
                sent_at=dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC),
            )
        )
    result = preview("--invoice", "INV-1", "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.output
    rows = {r["channel"]: r for r in map(json.loads, result.stdout.splitlines())}
    lines = plan(
        load_portfolio(engine), dt.datetime(2026, 11, 10, 12, tzinfo=dt.UTC), load_policy()
    )
    assert {str(s) for s in lines["stage"]} == {rows["email"]["stage"]} == {"overdue_2"}
    # 07:00 in New York: the email waits for the window; the SMS would never go
    assert rows["email"]["plan"] == (
        "deferred until 2026-11-10T14:00:00+00:00: outside_send_window"
    )
    assert rows["sms"]["plan"] == "would not be sent: no_sms_consent"
    human = preview("--invoice", "INV-1", "--as-of", AS_OF)
    assert human.exit_code == 0, human.output
    assert "sms · stage overdue_2: would not be sent: no_sms_consent" in human.stdout
    assert "email · stage overdue_2: deferred until 2026-11-10T14:00:00+00:00" in human.stdout
    at_ten = preview("--invoice", "INV-1", "--as-of", "2026-11-10T15:00:00Z", "--json")
    email = json.loads(at_ten.stdout.splitlines()[0])
    assert (email["stage"], email["plan"]) == ("overdue_2", "send now")

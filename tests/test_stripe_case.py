"""The stripe-special-currencies case end to end: the case's files imported by the CLI, its
signed payment_intent.succeeded events posted over real HTTP to the receiver, the inbox
applied, and the plan read back. Partial payments in UGX, ISK and HUF leave the rest open."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from pydantic import SecretStr
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from dunning.cli import _load_commands, app
from dunning.config import WebhookSettings
from dunning.db import session_scope
from dunning.db.models import Invoice
from dunning.tracking import apply_inbox
from dunning.webhooks import create_app
from tests.test_webhooks_e2e import receiver_url, serve, wait_for_inbox

#: The case's files (../shared/cases/stripe-special-currencies), as they are there.
FILES = {
    "customers": """customer_id,name,email,country,timezone,locale
C-121,Kato Okello,kato@example.ug,UG,Africa/Kampala,en_UG
C-122,Jon Jonsson,jon@example.is,IS,Atlantic/Reykjavik,is_IS
C-123,Anna Kovacs,anna@example.hu,HU,Europe/Budapest,hu_HU
C-124,Hana Sato,hana@example.jp,JP,Asia/Tokyo,ja_JP
""",
    "invoices": """invoice_number,customer_id,currency,amount,issued_on,due_on
INV-UGX,C-121,UGX,300000,2026-10-01,2026-10-31
INV-ISK,C-122,ISK,20000,2026-10-01,2026-10-31
INV-HUF,C-123,HUF,15000,2026-10-01,2026-10-31
INV-JPY,C-124,JPY,54000,2026-10-01,2026-10-31
""",
    "invoices_huf_decimals": """invoice_number,customer_id,currency,amount,issued_on,due_on
INV-HUF2,C-123,HUF,15000.00,2026-10-01,2026-10-31
INV-HUF3,C-123,HUF,15000.50,2026-10-01,2026-10-31
""",
}
SECRET = "whsec_case"
#: invoice, currency, amount paid, Stripe's amount_received (as the case's post_stripe.py)
PAYMENTS = [
    ("INV-UGX", "ugx", 100000, 100000 * 100),
    ("INV-ISK", "isk", 5000, 5000 * 100),
    ("INV-HUF", "huf", 5000, 5000 * 100),
    ("INV-JPY", "jpy", 20000, 20000),
]
runner = CliRunner()
__all__ = ["receiver_url"]  # a fixture this module uses


def cli(*args: str) -> Any:
    _load_commands()
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.stdout + result.stderr
    return result


def sign(body: str, use_stripe: bool) -> str:
    """The Stripe-Signature header: by Stripe's own test helper, or written out by hand."""
    if use_stripe:
        return stripe.WebhookSignature.generate_signature_header(body, SECRET)
    ts = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


@pytest.fixture
def receiver(engine: Engine, receiver_url: str) -> Iterator[str]:
    settings = WebhookSettings(stripe_webhook_secret=SecretStr(SECRET))
    server, thread = serve(create_app(settings, engine), receiver_url)
    yield f"{receiver_url}/webhooks/stripe"
    server.should_exit = True
    thread.join(timeout=10)


def test_stripe_special_currencies_case(engine: Engine, receiver: str, tmp_path: Path) -> None:
    for kind, name in (
        ("customers", "customers"),
        ("invoices", "invoices"),
        ("invoices", "invoices_huf_decimals"),
    ):
        path = tmp_path / f"{name}.csv"
        path.write_text(FILES[name], encoding="utf-8")
        cli("import", kind, str(path), "--json")
    for i, (number, currency, _, minor) in enumerate(PAYMENTS):
        body = json.dumps(
            {
                "id": f"evt_{number}",
                "type": "payment_intent.succeeded",
                "created": int(time.time()),
                "data": {
                    "object": {
                        "id": f"pi_{number}",
                        "object": "payment_intent",
                        "amount": minor,
                        "amount_received": minor,
                        "currency": currency,
                        "metadata": {"invoice_number": number},
                    }
                },
            }
        )
        response = httpx.post(
            receiver,
            content=body,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": sign(body, i % 2 == 0),
            },
        )
        assert response.status_code == 200, response.text
    forged = json.dumps({"id": "evt_forged", "type": "payment_intent.succeeded"})
    assert (
        httpx.post(
            receiver,
            content=forged,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": sign(forged, True).replace("v1=", "v1=0"),
            },
        ).status_code
        == 403
    )
    wait_for_inbox(engine, {f"evt_{p[0]}" for p in PAYMENTS})
    assert apply_inbox(engine).counts["payment"] == 4

    plan = [
        json.loads(line)
        for line in cli(
            "plan", "--all", "--as-of", "2026-11-10T12:00:00Z", "--json"
        ).stdout.splitlines()
    ]
    email = {p["invoice_number"]: p for p in plan if p["channel"] == "email"}
    balances = {n: Decimal(p["balance"]) for n, p in email.items()}
    assert balances == {
        "INV-UGX": 200000,
        "INV-ISK": 15000,
        "INV-HUF": Decimal("10000.00"),
        "INV-JPY": 34000,
        "INV-HUF2": Decimal("15000.00"),
        "INV-HUF3": Decimal("15000.50"),
    }
    for number in ("INV-UGX", "INV-ISK", "INV-HUF", "INV-HUF3"):
        assert email[number]["action"] == "send", email[number]
    with session_scope(engine) as s:
        status = {n: st for n, st in s.execute(select(Invoice.invoice_number, Invoice.status))}
    assert set(status.values()) == {"open"}

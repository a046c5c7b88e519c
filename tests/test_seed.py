"""The synthetic portfolio: deterministic, realistic, valid, and written in bulk."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from babel import Locale
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from dunning.cli import _load_commands, app
from dunning.db.models import Customer, Invoice, Payment, PaymentAttempt
from dunning.devtools.seed import MARKETS, generate, invoice_counts, phone_for, seed_portfolio
from dunning.errors import DunningError
from dunning.money import exponent

AS_OF = dt.date(2026, 11, 24)


def test_same_seed_same_data_and_another_seed_differs() -> None:
    assert list(generate(120, 600, 42, AS_OF)) == list(generate(120, 600, 42, AS_OF))
    assert list(generate(120, 600, 42, AS_OF)) != list(generate(120, 600, 43, AS_OF))


@pytest.mark.parametrize(("customers", "invoices"), [(10, 0), (10, 3), (10, 200), (1, 7)])
def test_invoice_counts_sum_to_the_request(customers: int, invoices: int) -> None:
    rng = random.Random(1)
    archetypes = rng.choices(["on_time", "new"], k=customers)
    counts = invoice_counts(rng, archetypes, invoices)
    assert sum(counts) == invoices
    if "on_time" in archetypes:  # otherwise new customers must take every invoice
        assert all(c <= 1 for c, a in zip(counts, archetypes, strict=True) if a == "new")


@pytest.mark.parametrize("market", MARKETS, ids=lambda m: m.country)
def test_phones_are_valid_mobiles_of_the_country(market: Any) -> None:
    for index in random.Random(market.country).sample(range(10**6), 300) + [0, 999_999]:
        number = phonenumbers.parse(phone_for(market.country, index))
        assert phonenumbers.is_valid_number(number)
        assert phonenumbers.region_code_for_number(number) == market.country


def _snapshot(engine: Engine) -> dict[str, list[Any]]:
    with engine.connect() as conn:
        return {
            "customers": [
                tuple(r)
                for r in conn.execute(
                    select(
                        Customer.customer_id,
                        Customer.email,
                        Customer.phone,
                        Customer.country,
                        Customer.timezone,
                        Customer.locale,
                        Customer.sms_consent,
                        Customer.email_opt_out,
                        Customer.sms_opt_out,
                        Customer.paused_until,
                    ).order_by(Customer.customer_id)
                )
            ],
            "invoices": [
                tuple(r)
                for r in conn.execute(
                    select(
                        Invoice.invoice_number,
                        Invoice.customer_id,
                        Invoice.currency,
                        Invoice.amount,
                        Invoice.issued_on,
                        Invoice.due_on,
                        Invoice.status,
                        Invoice.payment_link,
                        Invoice.promise_to_pay_on,
                    ).order_by(Invoice.invoice_number)
                )
            ],
            "payments": [
                tuple(r)
                for r in conn.execute(
                    select(
                        Invoice.invoice_number, Payment.amount, Payment.paid_at, Payment.external_id
                    )
                    .join(Invoice, Payment.invoice_id == Invoice.id)
                    .order_by(Payment.external_id)
                )
            ],
            "attempts": [
                tuple(r)
                for r in conn.execute(
                    select(
                        Invoice.invoice_number,
                        PaymentAttempt.attempted_at,
                        PaymentAttempt.outcome,
                        PaymentAttempt.failure_code,
                    )
                    .join(Invoice, PaymentAttempt.invoice_id == Invoice.id)
                    .order_by(PaymentAttempt.external_id)
                )
            ],
        }


def test_seeded_portfolio_is_realistic_and_valid(engine: Engine) -> None:
    counts = seed_portfolio(engine, 400, 2000, 7, AS_OF)
    data = _snapshot(engine)
    assert (counts["customers"], counts["invoices"]) == (400, 2000)
    assert (counts["payments"], counts["payment_attempts"]) == (
        len(data["payments"]),
        len(data["attempts"]),
    )
    markets = {m.country: m for m in MARKETS}
    for _cid, email, phone, country, zone, locale, *_flags in data["customers"]:
        market = markets[country]
        assert zone in market.zones and ZoneInfo(zone)
        assert locale in market.locales and Locale.parse(locale).territory == country
        assert email is None or email.endswith(("@example.com", "@example.org"))
        assert phone is None or phonenumbers.is_valid_number(phonenumbers.parse(phone))
    assert {c[3] for c in data["customers"]} == set(markets)
    assert any(not c[6] for c in data["customers"])  # some without SMS consent
    assert any(c[7] or c[8] for c in data["customers"])  # some opted out

    paid: dict[str, Decimal] = defaultdict(Decimal)
    instalments: dict[str, int] = defaultdict(int)
    for number, amount, paid_at, _ext in data["payments"]:
        paid[number] += amount
        instalments[number] += 1
        assert paid_at.tzinfo is not None and paid_at.date() <= AS_OF
    country_of = {c[0]: c[3] for c in data["customers"]}
    statuses: dict[str, int] = defaultdict(int)
    for number, cid, currency, amount, issued, due, status, link, promise in data["invoices"]:
        statuses[status] += 1
        assert currency == markets[country_of[cid]].currency
        assert amount == amount.quantize(Decimal(1).scaleb(-exponent(currency)))
        assert issued <= due and issued <= AS_OF
        if status == "paid":
            assert paid[number] == amount
        else:
            assert paid[number] < amount
        if status in ("void", "disputed"):
            assert paid[number] == 0
        if status == "open" and due < AS_OF:
            assert 1 <= (AS_OF - due).days <= 40
        if promise is not None:
            assert status == "open" and promise > AS_OF
        assert link is None or link == f"https://pay.example.com/i/{number}"
    invoices = data["invoices"]
    assert statuses["paid"] > len(invoices) / 2
    assert all(statuses[s] > 0 for s in ("open", "void", "disputed"))
    assert any(i[6] == "open" and i[5] >= AS_OF for i in invoices)  # not yet due
    assert any(i[6] == "open" and i[5] < AS_OF for i in invoices)  # overdue
    assert any(i[8] is not None for i in invoices)
    assert any(n > 1 for n in instalments.values())  # partial payments
    assert any(paid[i[0]] and i[6] == "open" for i in invoices)  # partly paid, still open
    failures = [a for a in data["attempts"] if a[2] == "failed"]
    assert failures and all(a[3] for a in failures)
    with_invoices = {i[1] for i in invoices}
    assert len(with_invoices) < 400  # new customers without an invoice yet


def test_refuses_a_non_empty_database_unless_reset(engine: Engine) -> None:
    seed_portfolio(engine, 30, 90, 1, AS_OF)
    first = _snapshot(engine)
    with pytest.raises(DunningError) as exc:
        seed_portfolio(engine, 30, 90, 1, AS_OF)
    assert "already holds 30 customers and 90 invoices" in str(exc.value)
    assert "pass --reset" in str(exc.value)
    seed_portfolio(engine, 30, 90, 2, AS_OF, reset=True)
    assert _snapshot(engine) != first
    seed_portfolio(engine, 30, 90, 1, AS_OF, reset=True)
    assert _snapshot(engine) == first  # same seed, same rows, through the database too


def test_cli_seed_prints_counts_and_refuses_a_second_seed(db_url: str) -> None:
    _load_commands()
    runner = CliRunner()
    args = [
        "seed",
        "--customers",
        "25",
        "--invoices",
        "60",
        "--seed",
        "3",
        "--as-of",
        "2026-11-24",
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert (payload["customers"], payload["invoices"], payload["as_of"]) == (25, 60, "2026-11-24")
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "already holds 25 customers" in " ".join(again.stderr.split())
    bad = runner.invoke(app, [*args[:-3], "--as-of", "24/11/2026"])
    assert bad.exit_code == 1 and "--as-of '24/11/2026' is not a date" in bad.stderr

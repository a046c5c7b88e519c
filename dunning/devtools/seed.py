"""A deterministic synthetic portfolio: customers with archetypal payment histories.

The same ``seed`` and ``as_of`` give the same rows. Generation is pure (``generate_block``);
``seed_portfolio`` streams blocks of customers into the database with bulk Core inserts.
"""

from __future__ import annotations

import datetime as dt
import random
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

import phonenumbers
from sqlalchemy import Connection, Engine, delete, func, insert, select

from dunning.db import analyze, check_ready, redact_url
from dunning.db.models import Base, Customer, Invoice, Payment, PaymentAttempt, utcnow
from dunning.errors import DunningError
from dunning.regions import default_region

Row = dict[str, Any]
#: Customers generated and written per block (bounds memory; one progress step each).
BLOCK = 2000


@dataclass(frozen=True)
class Market:
    """A country with the time zones, locales and currency its customers use."""

    country: str
    zones: tuple[str, ...]
    locales: tuple[str, ...]
    currency: str
    weight: float


MARKETS = (
    Market(
        "US",
        ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"),
        ("en_US",),
        "USD",
        0.30,
    ),
    Market("GB", ("Europe/London",), ("en_GB",), "GBP", 0.15),
    Market("DE", ("Europe/Berlin",), ("de_DE",), "EUR", 0.14),
    Market("FR", ("Europe/Paris",), ("fr_FR",), "EUR", 0.10),
    Market("ES", ("Europe/Madrid",), ("es_ES",), "EUR", 0.08),
    Market("JP", ("Asia/Tokyo",), ("ja_JP",), "JPY", 0.07),
    Market(
        "AU",
        ("Australia/Sydney", "Australia/Melbourne", "Australia/Perth"),
        ("en_AU",),
        "AUD",
        0.08,
    ),
    Market(
        "CA",
        ("America/Toronto", "America/Vancouver", "America/Halifax"),
        ("en_CA", "fr_CA"),
        "CAD",
        0.08,
    ),
)
ARCHETYPES = ("on_time", "occasionally_late", "chronically_late", "card_failures", "new")
ARCHETYPE_WEIGHTS = (0.40, 0.25, 0.15, 0.10, 0.10)
FAILURE_CODES = ("card_declined", "insufficient_funds", "expired_card", "do_not_honor")
FIRST_NAMES = (
    "Ada",
    "Ben",
    "Chloe",
    "David",
    "Elena",
    "Felix",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kenji",
    "Laura",
    "Mateo",
    "Nora",
    "Oscar",
    "Paula",
    "Quinn",
    "Rosa",
    "Sam",
    "Yuki",
)
LAST_NAMES = (
    "Smith",
    "Muller",
    "Martin",
    "Garcia",
    "Tanaka",
    "Brown",
    "Schmidt",
    "Dubois",
    "Lopez",
    "Sato",
    "Wilson",
    "Fischer",
    "Bernard",
    "Perez",
    "Suzuki",
    "Taylor",
)


@dataclass
class Block:
    """Rows of one block of customers; payments and attempts name their invoice by number."""

    customers: list[Row] = field(default_factory=list)
    invoices: list[Row] = field(default_factory=list)
    payments: list[Row] = field(default_factory=list)
    attempts: list[Row] = field(default_factory=list)


@lru_cache(maxsize=16)
def _mobile_prefix(country: str) -> str:
    """The E.164 example mobile number of ``country`` without its last six digits."""
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None, f"phonenumbers has no example mobile for {country}"
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)[:-6]


def phone_for(country: str, index: int) -> str:
    """A valid E.164 mobile number for ``country``, distinct for each index below 10**6."""
    # The last six digits of the national examples are free: every suffix validates (tested).
    return f"{_mobile_prefix(country)}{index % 10**6:06d}"


def invoice_counts(rng: random.Random, archetypes: list[str], invoices: int) -> list[int]:
    """How many invoices each customer gets: 0-1 for new customers, the rest spread unevenly,
    summing to ``invoices``."""
    counts = [min(rng.randint(0, 1), 1) if a == "new" else 0 for a in archetypes]
    # New customers' single invoices must fit into the total.
    for i in range(len(counts)):
        if sum(counts) <= invoices:
            break
        counts[i] = 0
    rest = invoices - sum(counts)
    takers = [i for i, a in enumerate(archetypes) if a != "new"] or list(range(len(counts)))
    if not takers or rest <= 0:
        return counts
    weights = [0.5 + rng.random() for _ in takers]
    scale = rest / sum(weights)
    shares = [int(w * scale) for w in weights]
    for n in range(rest - sum(shares)):
        shares[n % len(shares)] += 1
    for i, share in zip(takers, shares, strict=True):
        counts[i] += share
    return counts


def _delay(rng: random.Random, archetype: str) -> int:
    """Days between due date and payment for one invoice of ``archetype`` (negative: early)."""
    if archetype == "on_time":
        return rng.randint(-7, 0)
    if archetype == "occasionally_late":
        return rng.randint(3, 25) if rng.random() < 0.2 else rng.randint(-5, 1)
    if archetype == "chronically_late":
        return rng.randint(5, 40)
    if archetype == "card_failures":
        return rng.randint(1, 10) if rng.random() < 0.6 else rng.randint(10, 40)
    return rng.randint(-3, 10)


def _amount(rng: random.Random, currency: str) -> Decimal:
    if currency == "JPY":
        return Decimal(rng.randint(50, 5000) * 100)
    return Decimal(rng.randint(2000, 500000)).scaleb(-2)


def _instant(rng: random.Random, day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(rng.randint(6, 21), rng.randint(0, 59)), dt.UTC)


def _customer(rng: random.Random, index: int, market: Market, as_of: dt.date) -> Row:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    domain = "example.com" if rng.random() < 0.7 else "example.org"
    row: Row = {
        "customer_id": f"CUS-{index:07d}",
        "name": f"{first} {last}",
        "email": None if rng.random() < 0.02 else f"{first}.{last}.{index}@{domain}".lower(),
        "phone": None if rng.random() < 0.05 else phone_for(market.country, index),
        "country": market.country,
        "timezone": rng.choice(market.zones),
        "locale": rng.choice(market.locales),
        "sms_consent": rng.random() >= 0.25,
        "email_opt_out": rng.random() < 0.03,
        "sms_opt_out": rng.random() < 0.04,
        # Two in five agreed to reminder calls. From a hash of the index, not from ``rng``:
        # a draw from ``rng`` would change every later value of every existing seed.
        "voice_consent": zlib.crc32(f"voice-{index}".encode()) % 5 < 2,
        "paused_until": as_of + dt.timedelta(days=rng.randint(7, 30))
        if rng.random() < 0.01
        else None,
    }
    # As an import without a region column stores it: the region the time zone names. Set
    # after the draws above so every existing seed keeps its values.
    row["region"] = default_region(row["timezone"], market.country)
    return row


def _history(
    rng: random.Random,
    block: Block,
    customer: Row,
    archetype: str,
    currency: str,
    numbers: Iterator[int],
    count: int,
    as_of: dt.date,
) -> None:
    """Appends ``count`` invoices of one customer, with payments and attempts, to ``block``."""
    gap = 30 if count <= 12 else max(2, 360 // count)
    for j in range(count):
        number = f"INV-{next(numbers):08d}"
        issued = as_of - dt.timedelta(days=gap * (count - 1 - j) + rng.randint(0, 20))
        due = issued + dt.timedelta(days=rng.choice((14, 30, 30, 30, 45)))
        amount = _amount(rng, currency)
        invoice = {
            "invoice_number": number,
            "customer_id": customer["customer_id"],
            "currency": currency,
            "amount": amount,
            "issued_on": issued,
            "due_on": due,
            "status": "open",
            "promise_to_pay_on": None,
            "payment_link": f"https://pay.example.com/i/{number}" if rng.random() < 0.9 else None,
        }
        block.invoices.append(invoice)
        roll = rng.random()
        if roll < 0.01:
            invoice["status"] = "void"
            continue
        if roll < 0.025:
            invoice["status"] = "disputed"
            continue
        paid_on = max(issued, due + dt.timedelta(days=_delay(rng, archetype)))
        parts = [amount]
        if rng.random() < 0.12:  # paid in two instalments, the first before the final date
            first = (amount * Decimal(rng.randint(30, 70)) / 100).quantize(amount)
            parts = [first, amount - first]
        days = [max(issued, paid_on - dt.timedelta(days=rng.randint(3, 15))), paid_on][
            -len(parts) :
        ]
        for k, (part, day) in enumerate(zip(parts, days, strict=True)):
            if day <= as_of:
                block.payments.append(
                    {
                        "invoice_number": number,
                        "amount": part,
                        "paid_at": _instant(rng, day),
                        "source": "seed",
                        "external_id": f"seed:{number}:{k}",
                    }
                )
        if paid_on <= as_of:
            invoice["status"] = "paid"
        elif due < as_of and rng.random() < 0.2:
            invoice["promise_to_pay_on"] = as_of + dt.timedelta(days=rng.randint(1, 14))
        if archetype == "card_failures":
            _card_attempts(rng, block, number, due, paid_on, as_of)


def _card_attempts(
    rng: random.Random, block: Block, number: str, due: dt.date, paid_on: dt.date, as_of: dt.date
) -> None:
    """Appends failed charges from the due date on (and the charge that succeeded) to ``block``."""
    for k in range(rng.randint(1, 3)):
        day = due + dt.timedelta(days=2 * k)
        if day > as_of or day >= paid_on:
            break
        block.attempts.append(
            {
                "invoice_number": number,
                "attempted_at": _instant(rng, day),
                "outcome": "failed",
                "failure_code": rng.choice(FAILURE_CODES),
                "source": "seed",
                "external_id": f"seed:{number}:a{k}",
            }
        )
    if paid_on <= as_of:
        block.attempts.append(
            {
                "invoice_number": number,
                "attempted_at": _instant(rng, paid_on),
                "outcome": "succeeded",
                "failure_code": None,
                "source": "seed",
                "external_id": f"seed:{number}:ok",
            }
        )


def generate(customers: int, invoices: int, seed: int, as_of: dt.date) -> Iterator[Block]:
    """Blocks of at most BLOCK customers with their invoices, payments and attempts."""
    rng = random.Random(seed)
    markets = rng.choices(MARKETS, weights=[m.weight for m in MARKETS], k=customers)
    archetypes = rng.choices(ARCHETYPES, weights=ARCHETYPE_WEIGHTS, k=customers)
    counts = invoice_counts(rng, archetypes, invoices)
    numbers = iter(range(1, invoices + 1))
    for start in range(0, customers, BLOCK):
        block = Block()
        for i in range(start, min(start + BLOCK, customers)):
            customer = _customer(rng, i + 1, markets[i], as_of)
            block.customers.append(customer)
            _history(
                rng, block, customer, archetypes[i], markets[i].currency, numbers, counts[i], as_of
            )
        yield block


def _refuse_or_reset(conn: Connection, reset: bool) -> None:
    held = {
        name: conn.execute(select(func.count()).select_from(model)).scalar_one()
        for name, model in (("customers", Customer), ("invoices", Invoice))
    }
    if not any(held.values()):
        return
    if not reset:
        raise DunningError(
            f"the database at {redact_url(str(conn.engine.url))} already holds "
            f"{held['customers']} customers and {held['invoices']} invoices; seed into an "
            "empty database, or pass --reset to delete every existing row first"
        )
    for table in reversed(Base.metadata.sorted_tables):
        conn.execute(delete(table))


def seed_portfolio(
    engine: Engine,
    customers: int,
    invoices: int,
    seed: int,
    as_of: dt.date,
    *,
    reset: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """The counts of rows written: a synthetic portfolio seeded into an empty database.

    Raises DunningError when the database already holds customers or invoices, unless
    ``reset``: then every row of every table is deleted first. Delete and seed are one
    transaction, so a failure leaves the database as it was. The planner's statistics are
    refreshed afterwards (``analyze``), so the first queries on the seeded data plan well.
    """
    if customers < 0 or invoices < 0:
        raise DunningError("--customers and --invoices must be zero or more")
    if invoices and not customers:
        raise DunningError("invoices need customers: pass --customers 1 or more")
    check_ready(engine)
    counts: Counter[str] = Counter()
    now = utcnow()
    stamps = {"created_at": now, "updated_at": now}
    with engine.begin() as conn:
        _refuse_or_reset(conn, reset)
        for block in generate(customers, invoices, seed, as_of):
            conn.execute(insert(Customer), [{**stamps, **c} for c in block.customers])
            if block.invoices:
                conn.execute(insert(Invoice), [{**stamps, **i} for i in block.invoices])
                first, last = block.invoices[0], block.invoices[-1]
                ids = {
                    row.invoice_number: row.id
                    for row in conn.execute(
                        select(Invoice.invoice_number, Invoice.id).where(
                            Invoice.invoice_number.between(
                                first["invoice_number"], last["invoice_number"]
                            )
                        )
                    )
                }
                for table, rows in ((Payment, block.payments), (PaymentAttempt, block.attempts)):
                    if rows:
                        conn.execute(
                            insert(table),
                            [
                                {
                                    "created_at": now,
                                    "invoice_id": ids[r["invoice_number"]],
                                    **{k: v for k, v in r.items() if k != "invoice_number"},
                                }
                                for r in rows
                            ],
                        )
            counts.update(
                customers=len(block.customers),
                invoices=len(block.invoices),
                payments=len(block.payments),
                payment_attempts=len(block.attempts),
            )
            counts.update(i["status"] for i in block.invoices)
            counts["overdue"] += sum(
                1 for i in block.invoices if i["status"] == "open" and i["due_on"] < as_of
            )
            if progress:
                progress(len(block.customers), customers)
    analyze(engine)
    keys = (
        "customers",
        "invoices",
        "payments",
        "payment_attempts",
        "open",
        "paid",
        "void",
        "disputed",
        "overdue",
    )
    return {k: counts[k] for k in keys}

"""Planning the portfolio in customer chunks, so ``dunning plan`` prints as it goes.

The planner decides per customer: a customer's features, segment, daily SMS cap, one call a
day and every other rule look only at that customer's invoices and ledger rows. Planning the
customers range by range and concatenating the chunks therefore gives the lines of the whole
plan (tests/test_plan_stream.py compares both on a seeded database); only their order differs:
chunk by chunk in customer_id order, and within a chunk by invoice and channel, as the planner
orders them. Run-wide limits (``max_messages``, experiments) belong to the flow's selection
(dunning.tasks.plan), not to the planner, and are not applied here.

Each chunk is one range of customer_id (the customers table's primary key, and indexed on
invoices): loading a range reads only its rows, so the chunks together cost one pass over the
portfolio. The first chunks are small (the first line appears quickly), later ones larger (fewer
per-chunk costs).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import Engine, func, select

from dunning.db.models import Customer
from dunning.money import exponent
from dunning.policy import Policy, plan
from dunning.portfolio import load_portfolio

FIRST_CHUNK = 500  # customers in the first chunk
GROWTH = 4  # each chunk this many times the one before, up to MAX_CHUNK
# Customers in a chunk once the chunks have grown. On PostgreSQL each chunk's payments and
# attempts are read by a scan of those tables (a hash join beats 10,000s of index lookups), so
# fewer, larger chunks cost less; 32,000 customers is ~160,000 invoices at 5 per customer.
MAX_CHUNK = 32_000


@dataclass(frozen=True)
class Chunk:
    """One range of customers: low <= customer_id < high (None: unbounded), ``customers``
    of them."""

    low: str | None
    high: str | None
    customers: int


def customer_chunks(
    engine: Engine, *, first: int = FIRST_CHUNK, most: int = MAX_CHUNK
) -> Iterator[Chunk]:
    """The customers in ranges of customer_id, in the database's order: ``first`` customers,
    then GROWTH times as many each chunk up to ``most``. Covers every customer (the first chunk
    starts and the last ends unbounded, so customers added meanwhile fall in some chunk).
    Lazily: each range's end is one index seek, asked when the chunk before is consumed, so
    the first chunk does not wait for a scan of all customers. Raises ValueError when
    ``first`` is below 1 or above ``most``."""
    if first < 1 or most < first:
        raise ValueError(f"chunk sizes first={first}, most={most}: need 1 <= first <= most")
    low: str | None = None
    size = first
    while True:
        ids = select(Customer.customer_id)
        if low is not None:
            ids = ids.where(Customer.customer_id >= low)
        with engine.connect() as conn:
            high = conn.execute(
                ids.order_by(Customer.customer_id).offset(size).limit(1)
            ).scalar_one_or_none()
            count = (
                size
                if high is not None
                else conn.execute(select(func.count()).select_from(ids.subquery())).scalar_one()
            )
        yield Chunk(low, high, count)
        if high is None:
            return
        low, size = high, min(size * GROWTH, most)


def customer_count(engine: Engine) -> int:
    """How many customers the database holds (the total of customer_chunks)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Customer)).scalar_one())


def plan_chunks(
    engine: Engine,
    as_of: datetime,
    policy: Policy,
    chunks: Iterable[Chunk] | None = None,
) -> Iterator[tuple[Chunk, pd.DataFrame]]:
    """Per chunk of ``chunks`` (default: customer_chunks(engine)), in order, the chunk and its
    plan lines (the columns of dunning.policy.plan). Each chunk is loaded only when the one
    before has been consumed. ``as_of`` must be timezone-aware (ValueError otherwise)."""
    for chunk in chunks if chunks is not None else customer_chunks(engine):
        portfolio = load_portfolio(engine, customer_range=(chunk.low, chunk.high))
        yield chunk, plan(portfolio, as_of, policy)


def money_text(minor: pd.Series, currency: pd.Series) -> list[str]:
    """Amounts in integer minor units as decimal text with the currency's ISO 4217 digits, as
    ``str(dunning.money.from_minor(m, c))`` writes them ("60.25", "-1.50", "12000" for JPY).
    Raises ValueError for a currency that is not ISO 4217."""
    values = minor.to_numpy(np.int64).tolist()
    digits = {c: exponent(c) for c in pd.unique(currency.astype(str))}
    out = []
    for value, code in zip(values, currency.astype(str).tolist(), strict=True):
        e = digits[code]
        if e == 0:
            out.append(str(value))
            continue
        whole, part = divmod(abs(value), 10**e)
        out.append(f"{'-' if value < 0 else ''}{whole}.{part:0{e}d}")
    return out


def instant_text(values: pd.Series) -> list[str]:
    """UTC instants as ISO 8601 with Z (2026-11-24T15:00:00Z), "" for NaT."""
    text = pd.to_datetime(values, utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return text.where(values.notna(), "").tolist()


def json_lines(columns: dict[str, list[object]]) -> bytes:
    """The rows of ``columns`` (name -> equally long lists of JSON values: str, int, float,
    None), one JSON object per line, keys in the order of ``columns``; UTF-8, each line ending
    with a newline ("" for no rows)."""
    names = list(columns)
    dumps = orjson.dumps
    rows = [
        dumps(dict(zip(names, values, strict=True)))
        for values in zip(*columns.values(), strict=True)
    ]
    return b"".join(row + b"\n" for row in rows)


def json_values(values: pd.Series) -> list[object]:
    """``values`` as JSON-friendly Python values: numbers as int or float, NaN as None."""
    if values.dtype.kind in "iub":
        return values.tolist()
    return values.astype(object).where(values.notna(), None).tolist()

"""Loading the planning inputs (customers, invoices, history, ledger) into pandas DataFrames."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Engine,
    String,
    and_,
    case,
    cast,
    func,
    select,
    true,
    type_coerce,
)
from sqlalchemy.sql import ColumnElement, Select

from dunning.core.portfolio import CATEGORIES, FLAGS, Portfolio
from dunning.db.models import Customer, Invoice, Payment, PaymentAttempt, Reminder
from dunning.money import exponent

_CHUNK_ROWS = 100_000


def _factor(currencies: list[str]) -> ColumnElement[int]:
    """SQL expression: 10**exponent of the invoice currency (100 for EUR, 1 for JPY)."""
    whens = [(Invoice.currency == c, 10 ** exponent(c)) for c in currencies if exponent(c) != 2]
    return case(*whens, else_=100) if whens else case((Invoice.currency.is_(None), 100), else_=100)


def _minor(amount: Any, factor: ColumnElement[int]) -> ColumnElement[int]:
    """SQL expression: ``amount`` in integer minor units (Numeric times 10**exponent, rounded)."""
    return cast(func.round(amount * factor), BigInteger)


def _raw(column: Any) -> Any:
    """``column`` as the driver returns it (ISO text on SQLite, date/datetime on PostgreSQL).

    Skipping SQLAlchemy's per-row Date/UTCDateTime conversion matters at a million rows; pandas
    converts the whole column at once in _read.
    """
    return type_coerce(column, String()).label(column.key)


def _read(
    engine: Engine,
    stmt: Select[Any],
    dates: tuple[str, ...] = (),
    instants: tuple[str, ...] = (),
) -> pd.DataFrame:
    """``stmt`` as a DataFrame with calendar dates as datetime64 and instants as UTC."""
    # Straight from the DBAPI cursor: SQLAlchemy Row objects cost a third of the load time at a
    # million rows. Why bound parameters, not literal binds: psycopg's dialect doubles a "%"
    # inside a rendered literal, so an invoice number with a "%" matched nothing on PostgreSQL.
    compiled = stmt.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    params: Any = (
        [compiled.params[name] for name in compiled.positiontup or ()]
        if compiled.positional
        else compiled.params
    )
    chunks = []
    with engine.connect() as conn:
        cursor = conn.connection.cursor()
        try:
            cursor.execute(compiled.string, params)
            columns = [d[0] for d in cursor.description]
            # In chunks, so only one chunk of Python row tuples is alive at a time.
            while rows := cursor.fetchmany(_CHUNK_ROWS):
                chunks.append(
                    _typed(pd.DataFrame.from_records(rows, columns=columns), dates, instants)
                )
        finally:
            cursor.close()
    if not chunks:
        chunks.append(_typed(pd.DataFrame(columns=columns), dates, instants))
    df = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    for col in CATEGORIES:
        if col in df.columns:
            df[col] = df[col].astype("category")
    return df


def _typed(df: pd.DataFrame, dates: tuple[str, ...], instants: tuple[str, ...]) -> pd.DataFrame:
    """``df`` with ``dates`` as naive datetime64 days and ``instants`` as UTC datetimes."""
    for col in dates:
        df[col] = _to_datetime(df[col]).dt.tz_localize(None).astype("datetime64[ns]")
    for col in instants:
        df[col] = _to_datetime(df[col])
    return df


def _to_datetime(values: pd.Series) -> pd.Series:
    """``values`` (ISO text or date/datetime objects, naive meaning UTC) as UTC datetimes."""
    text = values.dropna()
    if len(text) and isinstance(text.iloc[0], str):
        return pd.to_datetime(values, utc=True, format="ISO8601").dt.as_unit("ns")
    return pd.to_datetime(values, utc=True).dt.as_unit("ns")


def _in_shard(engine: Engine, shards: int, shard: int) -> ColumnElement[bool]:
    """SQL condition: the customer is in shard ``shard`` of ``shards`` (shard_key % shards)."""
    if engine.dialect.name == "postgresql":
        # Why mod() there: _read runs the SQL without parameters, and psycopg's dialect writes
        # the % operator as %%, which only collapses back to % when parameters are passed.
        return func.mod(Customer.shard_key, shards) == shard
    return Customer.shard_key % shards == shard


def _in_range(
    bounds: tuple[str | None, str | None] | None, column: Any = Invoice.customer_id
) -> ColumnElement[bool]:
    """SQL condition: ``column`` (a customer_id) lies in [low, high) of ``bounds`` (None: all)."""
    low, high = bounds or (None, None)
    conditions = [column >= low] if low is not None else []
    conditions += [column < high] if high is not None else []
    return and_(true(), *conditions)


def load_portfolio(
    engine: Engine,
    *,
    invoice_numbers: list[str] | None = None,
    shard: tuple[int, int] | None = None,
    customer_range: tuple[str | None, str | None] | None = None,
) -> Portfolio:
    """The Portfolio in the database: every invoice (or those numbered) and their customers'
    full history, so segmentation sees the same customers the plan covers.

    ``shard`` = (shards, k) keeps only the customers with shard_key % shards == k, and their
    invoices, payments, attempts and ledger rows.

    ``customer_range`` = (low, high) keeps only the customers with low <= customer_id < high
    (None: unbounded), in the database's own order (ORDER BY customer_id): a range reads the
    indexed customer_id columns, so loading a portfolio range by range stays one pass
    (dunning.plan_stream plans in such chunks).
    """
    in_range = _in_range(customer_range)
    with engine.connect() as conn:
        currencies = [
            c for (c,) in conn.execute(select(Invoice.currency).where(in_range).distinct())
        ]
    factor = _factor(currencies)
    customer_filter = None
    if invoice_numbers is not None:
        customer_filter = (
            select(Invoice.customer_id)
            .where(Invoice.invoice_number.in_(invoice_numbers))
            .scalar_subquery()
        )
    cust = select(
        Customer.customer_id,
        Customer.country,
        Customer.timezone,
        Customer.locale,
        Customer.region,
        ((Customer.email.is_not(None)) & (Customer.email != "") & ~Customer.email_invalid).label(
            "has_email"
        ),
        ((Customer.phone.is_not(None)) & (Customer.phone != "")).label("has_phone"),
        Customer.not_mobile,
        Customer.sms_consent,
        Customer.email_opt_out,
        Customer.sms_opt_out,
        Customer.voice_consent,
        Customer.voice_opt_out,
        _raw(Customer.paused_until),
    )
    inv = select(
        Invoice.id.label("invoice_id"),
        Invoice.invoice_number,
        Invoice.customer_id,
        Invoice.currency,
        _minor(Invoice.amount, factor).label("amount_minor"),
        _raw(Invoice.issued_on),
        _raw(Invoice.due_on),
        Invoice.status,
        _raw(Invoice.promise_to_pay_on),
        _raw(Invoice.paused_until),
    )
    pay = select(
        Payment.invoice_id,
        _minor(Payment.amount, factor).label("amount_minor"),
        _raw(Payment.paid_at),
    ).join(Invoice, Invoice.id == Payment.invoice_id)
    att = select(
        PaymentAttempt.invoice_id,
        _raw(PaymentAttempt.attempted_at),
        PaymentAttempt.outcome,
        PaymentAttempt.failure_code,
    ).join(Invoice, Invoice.id == PaymentAttempt.invoice_id)
    led = select(
        Reminder.invoice_id,
        Reminder.stage,
        Reminder.channel,
        Reminder.status,
        Reminder.call_outcome,
        Reminder.reason,
        _raw(Reminder.sent_at),
        _raw(Reminder.claimed_at),
        _raw(Reminder.planned_at),
        _raw(Reminder.planned_for),
    ).join(Invoice, Invoice.id == Reminder.invoice_id)
    if customer_filter is not None:
        cust = cust.where(Customer.customer_id.in_(customer_filter))
        inv = inv.where(Invoice.customer_id.in_(customer_filter))
        pay = pay.where(Invoice.customer_id.in_(customer_filter))
        att = att.where(Invoice.customer_id.in_(customer_filter))
        led = led.where(Invoice.customer_id.in_(customer_filter))
    if shard is not None:
        in_shard = _in_shard(engine, *shard)
        by_customer = Customer.customer_id == Invoice.customer_id
        cust = cust.where(in_shard)
        inv = inv.join(Customer, by_customer).where(in_shard)
        pay = pay.join(Customer, by_customer).where(in_shard)
        att = att.join(Customer, by_customer).where(in_shard)
        led = led.join(Customer, by_customer).where(in_shard)
    if customer_range is not None:
        cust = cust.where(_in_range(customer_range, Customer.customer_id))
        inv, pay, att, led = (q.where(in_range) for q in (inv, pay, att, led))
    customers = _read(engine, cust, dates=("paused_until",))
    for col in FLAGS:
        customers[col] = customers[col].fillna(False).astype(bool)
    invoices = _read(
        engine, inv, dates=("issued_on", "due_on", "promise_to_pay_on", "paused_until")
    )
    payments = _read(engine, pay, instants=("paid_at",))
    paid = payments.groupby("invoice_id")["amount_minor"].sum()
    invoices["amount_minor"] = invoices["amount_minor"].astype("int64")
    invoices["paid_minor"] = invoices["invoice_id"].map(paid).fillna(0).astype("int64")
    invoices["customer_id"] = invoices["customer_id"].astype(str)
    # History of the customers is loaded for segmentation; only the named invoices are planned.
    invoices["in_scope"] = (
        True if invoice_numbers is None else invoices["invoice_number"].isin(invoice_numbers)
    )
    payments["amount_minor"] = payments["amount_minor"].astype("int64")
    attempts = _read(engine, att, instants=("attempted_at",))
    ledger = _read(engine, led, instants=("sent_at", "claimed_at", "planned_at", "planned_for"))
    return Portfolio(customers, invoices, payments, attempts, ledger)

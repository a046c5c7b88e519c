"""Loading the planning inputs (customers, invoices, history, ledger) into pandas DataFrames."""

from __future__ import annotations

import datetime as dt
import io
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    Engine,
    MetaData,
    String,
    Table,
    and_,
    case,
    cast,
    exists,
    func,
    insert,
    join,
    literal,
    literal_column,
    or_,
    select,
    true,
    type_coerce,
    union,
)
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement, Select

from dunning.core.portfolio import CATEGORIES, FLAGS, Portfolio
from dunning.core.status import OPEN
from dunning.db import analyze
from dunning.db.models import Customer, Invoice, Payment, PaymentAttempt, Reminder
from dunning.money import exponent
from dunning.segments.features import minor_threshold

if TYPE_CHECKING:
    from dunning.policy.model import Policy

_CHUNK_ROWS = 100_000


def _factor(currencies: list[str], currency: Any = Invoice.currency) -> ColumnElement[int]:
    """SQL expression: 10**exponent of the invoice currency (100 for EUR, 1 for JPY)."""
    whens = [(currency == c, 10 ** exponent(c)) for c in currencies if exponent(c) != 2]
    return case(*whens, else_=100) if whens else case((currency.is_(None), 100), else_=100)


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
    conn: Connection,
    stmt: Select[Any],
    dates: tuple[str, ...] = (),
    instants: tuple[str, ...] = (),
) -> pd.DataFrame:
    """``stmt`` as a DataFrame with calendar dates as datetime64 and instants as UTC."""
    # Straight from the DBAPI cursor: SQLAlchemy Row objects cost a third of the load time at a
    # million rows. Why bound parameters, not literal binds: psycopg's dialect doubles a "%"
    # inside a rendered literal, so an invoice number with a "%" matched nothing on PostgreSQL.
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params: Any = (
        [compiled.params[name] for name in compiled.positiontup or ()]
        if compiled.positional
        else compiled.params
    )
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        df = _read_copy(conn, compiled.string, params, dates, instants)
    else:
        df = _read_cursor(conn, compiled.string, params, dates, instants)
    for col in CATEGORIES:
        if col in df.columns:
            df[col] = df[col].astype("category")
    return df


#: Columns read as text from PostgreSQL's COPY (whatever their values look like).
#: The categorical columns are text too (dunning.core.portfolio.CATEGORIES).
_TEXT = frozenset({"customer_id", "invoice_number", "reason", "call_outcome", *CATEGORIES})


def _read_copy(
    conn: Connection,
    sql: str,
    params: Any,
    dates: tuple[str, ...],
    instants: tuple[str, ...],
) -> pd.DataFrame:
    """``sql`` through PostgreSQL's ``COPY (...) TO STDOUT`` (CSV) into pandas' C parser: no
    Python row objects. Booleans arrive as t/f, NULL as an empty field."""
    cursor = conn.connection.cursor()
    buf = io.BytesIO()
    try:
        with cursor.copy(  # type: ignore[attr-defined]
            f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)", params or None
        ) as copy:
            for block in copy:
                buf.write(block)
    finally:
        cursor.close()
    buf.seek(0)
    header = buf.readline().decode().strip().split(",")
    buf.seek(0)
    df = pd.read_csv(
        buf,
        dtype={c: str for c in header if c in _TEXT or c in dates or c in instants},
        true_values=["t"],
        false_values=["f"],
    )
    return _typed(df, dates, instants)


def _read_cursor(
    conn: Connection,
    sql: str,
    params: Any,
    dates: tuple[str, ...],
    instants: tuple[str, ...],
) -> pd.DataFrame:
    """``sql`` through the DBAPI cursor, in chunks of _CHUNK_ROWS rows."""
    chunks = []
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
        columns = [d[0] for d in cursor.description]
        # In chunks, so only one chunk of Python row tuples is alive at a time.
        while rows := cursor.fetchmany(_CHUNK_ROWS):
            chunks.append(_typed(pd.DataFrame.from_records(rows, columns=columns), dates, instants))
    finally:
        cursor.close()
    if not chunks:
        chunks.append(_typed(pd.DataFrame(columns=columns), dates, instants))
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


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


def _in_shard(conn: Connection, shards: int, shard: int) -> ColumnElement[bool]:
    """SQL condition: the customer is in shard ``shard`` of ``shards`` (shard_key % shards)."""
    if conn.dialect.name == "postgresql":
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


#: The skip reasons that are all the full plan has for an invoice the actionable load leaves
#: out (see ``actionable_invoices``): the invoice's own state rules it out today, whatever its
#: stage, channel or ledger.
INFORMATIONAL_SKIPS = frozenset(
    {
        "paid",
        "void",
        "disputed",
        "balance_below_minimum",
        "customer_paused",
        "invoice_paused",
        "promise_to_pay",
    }
)

#: The temporary table an actionable load fills with the invoices to plan and their customers.
_ACTIONABLE = Table(
    "dunning_actionable",
    MetaData(),
    Column("invoice_id", BigInteger, primary_key=True),
    Column("customer_id", String(64), nullable=False),
    prefixes=["TEMPORARY"],
)
#: The temporary table an actionable load creates (CREATE TEMPORARY TABLE … AS) from the
#: invoice read itself: every invoice it reads (those in scope and the history its customers
#: need) with the columns the frame takes, so the invoices are scanned once and the payments,
#: attempts and ledger rows are read by joining it. Only these two columns are named here.
_LOADED = Table(
    "dunning_loaded",
    MetaData(),
    Column("invoice_id", BigInteger),
    Column("currency", String(3)),
    prefixes=["TEMPORARY"],
)
#: The temporary table an actionable load fills with the customers in scope that have a
#: usable segmentation snapshot row (dunning.segment_snapshot.usable_customers).
_SEGMENTED = Table(
    "dunning_segmented",
    MetaData(),
    Column("customer_id", String(64), primary_key=True),
    prefixes=["TEMPORARY"],
)


def _day(conn: Connection, day: dt.date) -> ColumnElement[Any]:
    """``day`` as a bound value the driver compares with a Date column (ISO text on SQLite,
    where _read's raw parameters skip SQLAlchemy's type processing)."""
    if conn.dialect.name == "sqlite":
        return literal(day.isoformat(), String())
    return literal(day, Date())


def horizon(policy: Policy, as_of: dt.datetime) -> tuple[dt.date, dt.date, dt.date]:
    """(latest due date that can reach a stage, earliest and latest possible customer today).

    A customer's local today at ``as_of`` is the UTC date ± 1 day (zones run from UTC-12 to
    UTC+14; an unknown zone counts as UTC). An invoice reaches its ladder's first stage
    ``offset_days`` (pre-due: negative) after its due date, so one due after the UTC date + 1 -
    the lowest offset of any segment's ladder reaches no stage by days at ``as_of``.
    """
    day = as_of.astimezone(dt.UTC).date()
    offsets = [s.offset_days for seg in policy.segments for s in policy.ladder_for(seg).stages]
    offsets += [s.offset_days for s in policy.ladder.stages]
    lowest = min(offsets) if offsets else 0
    return (
        day + dt.timedelta(days=1 - lowest),
        day - dt.timedelta(days=1),
        day + dt.timedelta(days=1),
    )


def actionable_invoices(
    conn: Connection, as_of: dt.datetime, policy: Policy, currencies: list[str]
) -> Select[Any]:
    """SQL: (invoice_id, customer_id) of every invoice that could have a plan line at
    ``as_of`` other than an informational skip (``INFORMATIONAL_SKIPS``), a superset taken
    conservatively (each bound loosened by the ± 1 day of the customers' zones):

    - status open (paid, void and disputed invoices get only paid/void/disputed skips),
    - balance (amount less payments, in minor units as the planner counts them) above the
      policy's minimum for its currency,
    - neither the customer nor the invoice paused beyond every zone's today, no promise to pay
      on or after every zone's today,
    - and a stage within reach: due on or before ``horizon`` (the ladder's earliest pre-due
      offset), or any reminder row already (a rung climbed), or a failed payment attempt
      (payment_failed), or a promise to pay that may be broken (promise_broken);

    plus every invoice with an open (planned) ledger row, whatever its state. The planner's
    own rules decide the rest; the property test in tests/test_actionable_load.py checks that
    the plan of these invoices equals the full plan's lines for them and that every other line
    of the full plan is an informational skip.
    """
    last_due, _, latest_today = horizon(policy, as_of)
    inv, cus = aliased(Invoice), aliased(Customer)
    pay, att, rem = aliased(Payment), aliased(PaymentAttempt), aliased(Reminder)
    factor = _factor(currencies, inv.currency)
    paid = (
        select(func.coalesce(func.sum(_minor(pay.amount, factor)), 0))
        .where(pay.invoice_id == inv.id)
        .scalar_subquery()
    )
    # The policy's minimum per currency in minor units, as the planner compares it (every
    # currency in the database is listed; the ``else`` only keeps the CASE valid when empty).
    minimums = minor_threshold(
        pd.Series(currencies, dtype=object),
        dict(policy.min_balance_by_currency),
        policy.min_balance,
    )
    minimum = (
        case(
            *[(inv.currency == c, int(m)) for c, m in zip(currencies, minimums, strict=True)],
            else_=0,
        )
        if currencies
        else literal(0)
    )
    after = _day(conn, latest_today)
    within = or_(
        inv.due_on <= _day(conn, last_due),
        exists(select(rem.id).where(rem.invoice_id == inv.id)),
        exists(select(att.id).where(att.invoice_id == inv.id, att.outcome == "failed")),
        inv.promise_to_pay_on <= after,
    )
    # Paused customers are few: a set the database builds once, not a join it may misplan.
    paused = select(cus.customer_id).where(cus.paused_until > after)
    live = select(inv.id.label("invoice_id"), inv.customer_id).where(
        inv.status == "open",
        within,
        inv.customer_id.not_in(paused),
        or_(inv.paused_until.is_(None), inv.paused_until <= after),
        or_(inv.promise_to_pay_on.is_(None), inv.promise_to_pay_on <= after),
        _minor(inv.amount, factor) - paid > minimum,
    )
    opened = (
        select(inv.id.label("invoice_id"), inv.customer_id)
        .join(rem, rem.invoice_id == inv.id)
        .where(rem.status.in_([str(s) for s in OPEN]))
    )
    return union(live, opened)  # type: ignore[return-value]


def load_portfolio(
    engine: Engine,
    *,
    invoice_numbers: list[str] | None = None,
    shard: tuple[int, int] | None = None,
    customer_range: tuple[str | None, str | None] | None = None,
    actionable_at: dt.datetime | None = None,
    policy: Policy | None = None,
    snapshot_max_age: dt.timedelta | None = None,
) -> Portfolio:
    """The Portfolio in the database: every invoice (or those numbered) and their customers'
    full history, so segmentation sees the same customers the plan covers.

    ``shard`` = (shards, k) keeps only the customers with shard_key % shards == k, and their
    invoices, payments, attempts and ledger rows.

    ``customer_range`` = (low, high) keeps only the customers with low <= customer_id < high
    (None: unbounded), in the database's own order (ORDER BY customer_id): a range reads the
    indexed customer_id columns, so loading a portfolio range by range stays one pass
    (dunning.plan_stream plans in such chunks).

    ``actionable_at`` (a tz-aware instant; needs ``policy``) loads only what an hourly run
    plans: the invoices that could be actionable then (``actionable_invoices``) are in scope
    (column ``in_scope``), and only their customers are loaded, each with its full history
    (every invoice, payment, attempt and ledger row), which segmentation and the per-customer
    rules (one call and the SMS cap per local day) read. Equal to the full plan means: the
    plan of this portfolio has exactly the lines (every column, same order) the plan of the
    whole portfolio has for these invoices, and the whole portfolio's plan has, for every other
    invoice, only skip lines with a reason in ``INFORMATIONAL_SKIPS`` (paid, void, disputed,
    balance below the minimum, paused, promise to pay), which the run's report then no longer
    counts. Combined with ``invoice_numbers`` and ``shard``, an invoice is in scope when it is
    numbered, in the shard and actionable.

    ``snapshot_max_age`` (with ``actionable_at``; None: every customer's full history): a
    customer with a usable segmentation snapshot row at ``actionable_at`` (same segmentation
    policy, at most this old: ``dunning.segment_snapshot.usable_customers``, the one rule) is
    loaded with only what the planner reads beyond segmentation: its invoices in scope and
    every invoice of it with a ledger row (the per-customer daily caps), with their payments,
    attempts and ledger rows. Column ``full_history`` of ``customers`` is False for those
    customers: their segment must come from the snapshot (``segments_for`` and
    ``segment_frame`` refuse to segment them), with the same ``max_age``.

    Raises ValueError for ``actionable_at`` without ``policy`` or a naive ``actionable_at``.
    """
    if actionable_at is not None:
        if policy is None:
            raise ValueError("load_portfolio: actionable_at needs the run's policy (policy=)")
        if actionable_at.tzinfo is None or actionable_at.utcoffset() is None:
            raise ValueError("load_portfolio: actionable_at must be timezone-aware (UTC)")
    in_range = _in_range(customer_range)
    with engine.connect() as conn:
        currencies = [
            c for (c,) in conn.execute(select(Invoice.currency).where(in_range).distinct())
        ]
        if actionable_at is None:
            return _load(conn, currencies, invoice_numbers, shard, customer_range, None, None)
        assert policy is not None
        temporary = (_ACTIONABLE, _SEGMENTED, _LOADED)
        for table in temporary:  # a crashed load's, in a pooled connection
            table.drop(conn, checkfirst=True)
        for table in (_ACTIONABLE, _SEGMENTED):
            table.create(conn)
        try:
            if conn.dialect.name == "postgresql":
                # These statements are costed in millions, which switches JIT compilation on:
                # 0.3 s of compiling for a statement that runs in 0.5 s.
                conn.exec_driver_sql("SET LOCAL jit = off")
            conn.execute(
                insert(_ACTIONABLE).from_select(
                    ["invoice_id", "customer_id"],
                    actionable_invoices(conn, actionable_at, policy, currencies),
                )
            )
            _analyze(conn, (_ACTIONABLE,))
            segmented = None
            if snapshot_max_age is not None:
                from dunning.segment_snapshot import usable_customers

                usable = usable_customers(policy, actionable_at, snapshot_max_age).subquery()
                conn.execute(
                    insert(_SEGMENTED).from_select(
                        ["customer_id"],
                        select(usable.c.customer_id).where(
                            usable.c.customer_id.in_(select(_ACTIONABLE.c.customer_id))
                        ),
                    )
                )
                segmented = _SEGMENTED
                _analyze(conn, (_SEGMENTED,))
            return _load(
                conn, currencies, invoice_numbers, shard, customer_range, _ACTIONABLE, segmented
            )
        finally:
            # Committed: SQLite's DDL is transactional, and a rolled-back DROP would leave the
            # table in the pooled connection for the next load.
            conn.rollback()  # PostgreSQL: the table goes with the transaction that made it
            for table in temporary:
                table.drop(conn, checkfirst=True)
            conn.commit()


def _analyze(conn: Connection, tables: tuple[Table, ...]) -> None:
    """Statistics for the freshly filled temporary ``tables`` (PostgreSQL): autovacuum never
    analyzes temporary tables, and without row counts the planner guessed ~20k rows with
    ~200 distinct customers and read all 1M invoices and 840k payments by sequential scan to
    join them (3.4 s for the payments of 76k invoices at 1M; an index lookup per customer
    once it knows the counts)."""
    if conn.dialect.name == "postgresql":
        analyze(conn, tuple(table.name for table in tables))


def _through_loaded(
    conn: Connection,
    currencies: list[str],
    inv: Select[Any],
    pay: Select[Any],
    att: Select[Any],
    led: Select[Any],
) -> tuple[Select[Any], Select[Any], Select[Any], Select[Any]]:
    """The four history reads of an actionable load rewritten to read ``_LOADED``, created
    from ``inv`` itself: its conditions are evaluated once, not four times (each was a scan of
    the whole invoices table at 1M invoices), the invoices are read from the temporary table,
    and the payments, attempts and ledger rows by invoice id without joining the invoices."""
    compiled = inv.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params: Any = (
        tuple(compiled.params[name] for name in compiled.positiontup or ())
        if compiled.positional
        else compiled.params
    )
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {_LOADED.name} AS {compiled.string}", params)
    _analyze(conn, (_LOADED,))
    loaded = _LOADED.c.invoice_id
    factor = _factor(currencies, _LOADED.c.currency)

    def through(q: Select[Any], table: Any, column: Any) -> Select[Any]:
        # The same columns, from ``table`` restricted to the loaded invoices.
        return select(*q.selected_columns).select_from(join(table, _LOADED, column == loaded))

    # The payments' minor units from the loaded currency, not a join back to the invoices.
    paid = select(
        Payment.invoice_id,
        _minor(Payment.amount, factor).label("amount_minor"),
        _raw(Payment.paid_at),
    ).select_from(join(Payment, _LOADED, Payment.invoice_id == loaded))
    assert list(paid.selected_columns.keys()) == list(pay.selected_columns.keys())
    everything = select(*[literal_column(c) for c in inv.selected_columns.keys()])
    return (
        everything.select_from(_LOADED),
        paid,
        through(att, PaymentAttempt, PaymentAttempt.invoice_id),
        through(led, Reminder, Reminder.invoice_id),
    )


def _load(
    conn: Connection,
    currencies: list[str],
    invoice_numbers: list[str] | None,
    shard: tuple[int, int] | None,
    customer_range: tuple[str | None, str | None] | None,
    actionable: Table | None,
    segmented: Table | None,
) -> Portfolio:
    """load_portfolio's reads on ``conn``; ``actionable``: the temporary table of the
    invoices in scope (None: all, or those numbered); ``segmented``: the temporary table of
    the customers loaded with only the planner's part of their history (None: none)."""
    factor = _factor(currencies)
    customer_filter = None
    if invoice_numbers is not None:
        numbered = select(Invoice.customer_id).where(Invoice.invoice_number.in_(invoice_numbers))
        if actionable is not None:
            numbered = numbered.where(Invoice.id.in_(select(actionable.c.invoice_id)))
        customer_filter = numbered.scalar_subquery()
    elif actionable is not None:
        customer_filter = select(actionable.c.customer_id).scalar_subquery()
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
    if actionable is not None:
        inv = inv.add_columns(Invoice.id.in_(select(actionable.c.invoice_id)).label("actionable"))
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
        in_shard = _in_shard(conn, *shard)
        by_customer = Customer.customer_id == Invoice.customer_id
        cust = cust.where(in_shard)
        inv = inv.join(Customer, by_customer).where(in_shard)
        pay = pay.join(Customer, by_customer).where(in_shard)
        att = att.join(Customer, by_customer).where(in_shard)
        led = led.join(Customer, by_customer).where(in_shard)
    if segmented is not None and actionable is not None:
        # A customer with a usable snapshot row: its invoices in scope, and every invoice of
        # it with a ledger row (the planner counts a customer's calls and SMS of the day
        # across all its invoices, mapping each ledger row to its customer by invoice).
        partial = Invoice.customer_id.in_(select(segmented.c.customer_id))
        rem = aliased(Reminder)
        needed = or_(
            ~partial,
            Invoice.id.in_(select(actionable.c.invoice_id)),
            exists(select(rem.id).where(rem.invoice_id == Invoice.id)),
        )
        inv, pay, att, led = (q.where(needed) for q in (inv, pay, att, led))
        cust = cust.add_columns(
            Customer.customer_id.not_in(select(segmented.c.customer_id)).label("full_history")
        )
    if customer_range is not None:
        in_range = _in_range(customer_range)
        cust = cust.where(_in_range(customer_range, Customer.customer_id))
        inv, pay, att, led = (q.where(in_range) for q in (inv, pay, att, led))
    if actionable is not None:
        inv, pay, att, led = _through_loaded(conn, currencies, inv, pay, att, led)
    customers = _read(conn, cust, dates=("paused_until",))
    for col in FLAGS:
        customers[col] = customers[col].fillna(False).astype(bool)
    if "full_history" in customers.columns:
        customers["full_history"] = customers["full_history"].fillna(True).astype(bool)
    invoices = _read(conn, inv, dates=("issued_on", "due_on", "promise_to_pay_on", "paused_until"))
    payments = _read(conn, pay, instants=("paid_at",))
    paid = payments.groupby("invoice_id")["amount_minor"].sum()
    invoices["amount_minor"] = invoices["amount_minor"].astype("int64")
    invoices["paid_minor"] = invoices["invoice_id"].map(paid).fillna(0).astype("int64")
    invoices["customer_id"] = invoices["customer_id"].astype(str)
    # History of the customers is loaded for segmentation; only the named invoices are planned.
    in_scope = pd.Series(True, index=invoices.index)
    if invoice_numbers is not None:
        in_scope &= invoices["invoice_number"].isin(invoice_numbers)
    if actionable is not None:
        in_scope &= invoices.pop("actionable").fillna(False).astype(bool)
    invoices["in_scope"] = in_scope.to_numpy(bool)
    payments["amount_minor"] = payments["amount_minor"].astype("int64")
    attempts = _read(conn, att, instants=("attempted_at",))
    ledger = _read(conn, led, instants=("sent_at", "claimed_at", "planned_at", "planned_for"))
    return Portfolio(customers, invoices, payments, attempts, ledger)

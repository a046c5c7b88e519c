"""The segmentation snapshot: features and segment per customer, stored in customer_segments.

Segmentation by payment history changes slowly, so the ``segment-customers`` flow computes it
once a day (and after a sync that changed payment history) and stores it here; hourly runs
read it (:func:`segments_for`) and segment on the fly only the customers it does not cover.

The frames in and out have exactly the shape ``dunning.policy.segment_frame`` returns: index
``customer_id`` (str), the columns of ``dunning.segments.model.FEATURE_NAMES`` in that order
(floats: on_time_share, mean_days_late, p90_days_late, NaN when not judged; int64 counts and
days; bool large_overdue) and ``segment`` (categorical, the policy's segment names), so
``dunning.policy.plan(portfolio, as_of, policy, segments=frame)`` accepts them.

A stored row is used for a run at ``as_of`` only when it was computed under the same policy
segmentation (rules, fallback, large-overdue marks: :func:`policy_fingerprint`), describes
history at or before ``as_of``, and is at most DUNNING_SEGMENT_SNAPSHOT_MAX_AGE_HOURS older.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Select, delete, func, select

from dunning.core.portfolio import Portfolio
from dunning.db import analyze
from dunning.db.models import CustomerSegment, utcnow
from dunning.money import format_money, from_minor
from dunning.policy import Policy, segment_frame
from dunning.segments.model import FEATURE_NAMES

#: The float features (NaN when the customer has nothing judged yet); the rest are int64
#: except large_overdue (bool).
FLOAT_FEATURES = ("on_time_share", "mean_days_late", "p90_days_late")
BOOL_FEATURES = ("large_overdue",)
INT_FEATURES = tuple(f for f in FEATURE_NAMES if f not in FLOAT_FEATURES + BOOL_FEATURES)
#: A customer in no earlier snapshot, in the movement table's ``from`` column.
NEW = "(new)"
_IN_CHUNK = 5_000
#: Reading more customers than this, the whole table is read and filtered in memory.
_READ_ALL_ABOVE = 20_000
_SQLITE_INSTANT = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DATETIME text, naive UTC


def policy_fingerprint(policy: Policy) -> str:
    """A 16-hex-digit digest of what segmenting reads from ``policy``: the rules (segment and
    conditions, not their docs), the fallback segment and the large-overdue marks."""
    spec = {
        "rules": [
            [r.segment, [[c.feature, c.op, str(c.value)] for c in r.conditions]]
            for r in policy.rules
        ],
        "fallback": policy.fallback_segment,
        "large_overdue": str(policy.large_overdue_balance),
        "large_overdue_by_currency": {
            k: str(v) for k, v in sorted(policy.large_overdue_by_currency.items())
        },
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _check_frame(frame: pd.DataFrame) -> None:
    """ValueError unless ``frame`` has segment_frame's columns and a unique customer index."""
    missing = [c for c in (*FEATURE_NAMES, "segment") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"segment frame lacks column(s) {', '.join(missing)}: pass the frame "
            "dunning.policy.segment_frame returns"
        )
    if not frame.index.is_unique:
        raise ValueError("segment frame has a customer_id more than once in its index")
    if frame["segment"].isna().any():
        raise ValueError("segment frame has customers without a segment")


def _utc(as_of: dt.datetime, name: str = "as_of") -> dt.datetime:
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")
    return as_of.astimezone(dt.UTC)


@dataclass(frozen=True)
class SnapshotWrite:
    """What :func:`write_snapshot` stored: ``customers`` rows, and ``movement``: one row per
    (from_segment, to_segment) with ``customers`` (from_segment is :data:`NEW` for a customer
    in no earlier snapshot; customers whose segment did not change are counted too)."""

    customers: int
    movement: pd.DataFrame
    as_of: dt.datetime
    computed_at: dt.datetime
    fingerprint: str
    #: The newest ``as_of`` of the rows this write replaced (None: there were none).
    previous_as_of: dt.datetime | None = None

    @property
    def moved(self) -> int:
        """Customers whose segment changed since their earlier snapshot row (new ones not)."""
        m = self.movement
        changed = (m["from_segment"] != m["to_segment"]) & (m["from_segment"] != NEW)
        return int(m.loc[changed, "customers"].sum())


def write_snapshot(
    engine: Engine,
    frame: pd.DataFrame,
    as_of: dt.datetime,
    policy: Policy,
    *,
    replace: bool = True,
) -> SnapshotWrite:
    """Store ``frame`` (segment_frame's shape, computed at ``as_of``, UTC) as the snapshot.

    ``replace`` (default): the snapshot becomes exactly ``frame`` (rows of customers not in it
    are deleted); otherwise only the frame's customers' rows are replaced. Each row keeps the
    customer's segment before as ``previous_segment``. One transaction; bulk insert
    (executemany on SQLite, COPY on PostgreSQL). Raises ValueError for a frame of another shape
    or a naive ``as_of``; an unknown customer_id fails the foreign key (IntegrityError).
    """
    _check_frame(frame)
    as_of = _utc(as_of)
    computed_at = utcnow()
    fingerprint = policy_fingerprint(policy)
    ids = frame.index.astype(str)
    with engine.begin() as conn:
        before = _segments_before(conn, None if replace else list(ids))
        previous_as_of = _newest_as_of(conn)
        if replace:
            conn.execute(delete(CustomerSegment))
        else:
            for chunk in _chunks(list(ids)):
                conn.execute(delete(CustomerSegment).where(CustomerSegment.customer_id.in_(chunk)))
        previous = before.reindex(ids)
        rows = _rows(frame, ids, previous, as_of, computed_at, fingerprint)
        _insert(conn, rows)
        # The table was just rewritten: without fresh statistics the next hourly run's read of
        # it was planned for one row (a nested loop that ran for minutes at 200k customers).
        analyze(conn, (CustomerSegment.__tablename__,))
    movement = (
        pd.DataFrame(
            {
                "from_segment": previous.fillna(NEW).to_numpy(object),
                "to_segment": frame["segment"].astype(str).to_numpy(object),
            }
        )
        .value_counts()
        .rename("customers")
        .reset_index()
        .sort_values(["from_segment", "to_segment"], ignore_index=True)
    )
    movement["customers"] = movement["customers"].astype("int64")
    return SnapshotWrite(len(frame), movement, as_of, computed_at, fingerprint, previous_as_of)


def _newest_as_of(conn: Connection) -> dt.datetime | None:
    """The newest as_of stored (UTC), None for an empty snapshot."""
    newest = conn.execute(select(func.max(CustomerSegment.as_of))).scalar()
    return _instant(newest)


def _instant(value: object) -> dt.datetime | None:
    """A stored instant as aware UTC (max() over SQLite text returns the text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _segments_before(conn: Connection, ids: list[str] | None) -> pd.Series:
    """The stored segment per customer (of ``ids``, or all)."""
    stmt = select(CustomerSegment.customer_id, CustomerSegment.segment)
    pairs: list[Any] = []
    if ids is None:
        # Straight from the DBAPI cursor: SQLAlchemy Row objects cost seconds at 200k rows.
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        cur = dbapi.cursor()
        try:
            cur.execute("SELECT customer_id, segment FROM customer_segments")
            pairs = list(cur.fetchall())
        finally:
            cur.close()
    else:
        for chunk in _chunks(ids):
            pairs += conn.execute(stmt.where(CustomerSegment.customer_id.in_(chunk))).all()
    return pd.Series(
        [p[1] for p in pairs], index=pd.Index([p[0] for p in pairs], dtype=object), dtype=object
    )


_COLUMNS = (
    "customer_id",
    "segment",
    "previous_segment",
    *FEATURE_NAMES,
    "as_of",
    "computed_at",
    "policy_fingerprint",
)


def _rows(
    frame: pd.DataFrame,
    ids: pd.Index,
    previous: pd.Series,
    as_of: dt.datetime,
    computed_at: dt.datetime,
    fingerprint: str,
) -> pd.DataFrame:
    """The table's rows as a frame in _COLUMNS order (instants filled in by _insert)."""
    out = pd.DataFrame(
        {
            "customer_id": ids.to_numpy(object),
            "segment": frame["segment"].astype(str).to_numpy(object),
            "previous_segment": previous.to_numpy(object),
        }
    )
    for name in FLOAT_FEATURES:
        out[name] = frame[name].to_numpy(np.float64)
    for name in INT_FEATURES:
        out[name] = frame[name].to_numpy(np.int64)
    for name in BOOL_FEATURES:
        out[name] = frame[name].to_numpy(bool)
    out["as_of"] = as_of
    out["computed_at"] = computed_at
    out["policy_fingerprint"] = fingerprint
    return out


def _insert(conn: Connection, rows: pd.DataFrame) -> None:
    """Bulk insert ``rows`` into customer_segments: COPY on PostgreSQL, executemany else."""
    if not len(rows):
        return
    names = ", ".join(_COLUMNS)
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    if conn.dialect.name == "postgresql":
        buf = io.StringIO()
        out = rows.copy()
        for col in ("as_of", "computed_at"):
            out[col] = out[col].iloc[0].isoformat()
        # CSV: an unquoted empty field is NULL (NaN features, no previous segment).
        out.to_csv(buf, header=False, index=False, na_rep="", quoting=csv.QUOTE_MINIMAL)
        pg: Any = dbapi  # a psycopg connection: COPY through its cursor
        with pg.cursor() as cur:
            with cur.copy(f"COPY customer_segments ({names}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(buf.getvalue())
        return
    # Plain Python lists column by column (numpy's tolist is C; iterating pandas arrays value by
    # value was half of the write at 200k customers), NaN and NA as None.
    stamps = {
        col: rows[col].iloc[0].astimezone(dt.UTC).strftime(_SQLITE_INSTANT)
        for col in ("as_of", "computed_at")
    }
    columns: list[list[Any]] = []
    for col in _COLUMNS:
        if col in stamps:
            columns.append([stamps[col]] * len(rows))
        elif col in FLOAT_FEATURES:
            columns.append([None if v != v else v for v in rows[col].to_numpy().tolist()])
        elif col in BOOL_FEATURES:
            columns.append(rows[col].to_numpy(np.int64).tolist())
        elif col in ("customer_id", "segment", "previous_segment", "policy_fingerprint"):
            values = rows[col].to_numpy(object).tolist()
            columns.append([v if isinstance(v, str) else None for v in values])
        else:
            columns.append(rows[col].to_numpy(np.int64).tolist())
    marks = ", ".join("?" for _ in _COLUMNS)
    cur = dbapi.cursor()
    try:
        cur.executemany(
            f"INSERT INTO customer_segments ({names}) VALUES ({marks})",
            list(zip(*columns, strict=True)),
        )
    finally:
        cur.close()


def _usable_rule(
    policy: Policy | None, as_of: dt.datetime | None, max_age: dt.timedelta | None
) -> list[tuple[str, str, Any]]:
    """The one rule for a usable snapshot row, as (column, operator, value) conditions: same
    segmentation (``policy``'s fingerprint), history at or before ``as_of`` (UTC), and with
    ``max_age`` not older than ``as_of - max_age`` (each part only when given)."""
    rule: list[tuple[str, str, Any]] = []
    if policy is not None:
        rule.append(("policy_fingerprint", "=", policy_fingerprint(policy)))
    if as_of is not None:
        as_of = _utc(as_of)
        rule.append(("as_of", "<=", as_of))
        if max_age is not None:
            rule.append(("as_of", ">=", as_of - max_age))
    return rule


def usable_customers(
    policy: Policy, as_of: dt.datetime, max_age: dt.timedelta | None
) -> Select[tuple[str]]:
    """SQL: the customer_id of every stored row a run at ``as_of`` (UTC) under ``policy`` may
    use instead of segmenting the customer (the rule :func:`read_snapshot` and
    :func:`segments_for` apply). ``dunning.portfolio.load_portfolio`` loads only the planner's
    part of these customers' history. Raises ValueError for a naive ``as_of``."""
    ops = {"=": operator.eq, "<=": operator.le, ">=": operator.ge}
    columns = CustomerSegment.__table__.c
    return select(CustomerSegment.customer_id).where(
        *[ops[op](columns[name], value) for name, op, value in _usable_rule(policy, as_of, max_age)]
    )


def read_snapshot(
    engine: Engine,
    customer_ids: Iterable[str] | None = None,
    *,
    policy: Policy | None = None,
    as_of: dt.datetime | None = None,
    max_age: dt.timedelta | None = None,
    features: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The stored snapshot in segment_frame's shape (index customer_id as str, FEATURE_NAMES
    then ``segment``), for ``customer_ids`` (None: every stored customer; ids not stored are
    simply absent, so compare the index to find them). ``features``: only these of
    FEATURE_NAMES (in their FEATURE_NAMES order), then ``segment``: what the planner reads
    (``dunning.policy.planner.FEATURE_COLUMNS``) is 4 of the 10 stored features. Raises
    ValueError for a name not in FEATURE_NAMES.

    ``policy``: only rows computed under its segmentation (same :func:`policy_fingerprint`),
    and ``segment`` is categorical over ``policy.segments`` (without it, over the stored names,
    sorted). ``as_of`` (UTC): only rows describing history at or before it, and with
    ``max_age`` not older than ``as_of - max_age``. Raises ValueError for a naive ``as_of``.
    """
    # Straight from the DBAPI cursor: SQLAlchemy Row objects cost seconds at 200k customers,
    # and an hourly run reads the snapshot of every customer it plans.
    sqlite = engine.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    where: list[str] = []
    params: list[Any] = []
    for column, op, value in _usable_rule(policy, as_of, max_age):
        where.append(f"{column} {op} {mark}")
        if isinstance(value, dt.datetime) and sqlite:
            value = value.strftime(_SQLITE_INSTANT)
        params.append(value)
    named = _features(features)
    names = ", ".join(("customer_id", *named, "segment"))
    base = f"SELECT {names} FROM customer_segments"
    wanted = None if customer_ids is None else sorted({str(c) for c in customer_ids})
    queries: list[tuple[str, list[Any]]] = []
    if wanted is None or len(wanted) > _READ_ALL_ABOVE:
        queries.append((base + (" WHERE " + " AND ".join(where) if where else ""), params))
    else:
        for chunk in _chunks(wanted):
            cond = [*where, f"customer_id IN ({', '.join([mark] * len(chunk))})"]
            queries.append((base + " WHERE " + " AND ".join(cond), [*params, *chunk]))
    rows: list[tuple[object, ...]] = []
    with engine.connect() as conn:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        cur = dbapi.cursor()
        try:
            for sql, args in queries:
                cur.execute(sql, args)
                rows += cur.fetchall()
        finally:
            cur.close()
    frame = _frame(rows, policy, named)
    if wanted is not None and len(wanted) > _READ_ALL_ABOVE:
        frame = frame.loc[frame.index.isin(wanted)]
    return frame


def _features(features: Sequence[str] | None) -> tuple[str, ...]:
    """``features`` (None: all) as a tuple in FEATURE_NAMES order; ValueError for others."""
    if features is None:
        return tuple(FEATURE_NAMES)
    unknown = sorted(set(features) - set(FEATURE_NAMES))
    if unknown:
        raise ValueError(f"unknown segmentation feature(s) {unknown}; known: {FEATURE_NAMES}")
    return tuple(name for name in FEATURE_NAMES if name in set(features))


def _frame(
    rows: list[tuple[object, ...]],
    policy: Policy | None,
    named: tuple[str, ...] = tuple(FEATURE_NAMES),
) -> pd.DataFrame:
    """``rows`` (customer_id, ``named`` features..., segment) in segment_frame's shape (only
    the ``named`` features)."""
    df = pd.DataFrame.from_records(rows, columns=["customer_id", *named, "segment"])
    out = pd.DataFrame(index=pd.Index(df["customer_id"].astype(str), name="customer_id"))
    for name in [n for n in FLOAT_FEATURES if n in named]:
        out[name] = pd.to_numeric(df[name], errors="coerce").to_numpy(np.float64)
    for name in named:
        if name in INT_FEATURES:
            out[name] = df[name].to_numpy(np.int64)
        elif name in BOOL_FEATURES:
            out[name] = df[name].astype(bool).to_numpy(bool)
    out = out[list(named)]
    names = list(policy.segments) if policy is not None else sorted(set(df["segment"]))
    out["segment"] = pd.Categorical(df["segment"].to_numpy(object), categories=pd.Index(names))
    return out


@dataclass(frozen=True)
class SegmentsUsed:
    """Where a run's segments came from: ``from_snapshot`` customers read from the snapshot,
    ``on_the_fly`` customers segmented now (no usable snapshot row)."""

    from_snapshot: int
    on_the_fly: int


def subset_portfolio(portfolio: Portfolio, customer_ids: Iterable[str]) -> Portfolio:
    """``portfolio`` restricted to ``customer_ids`` (their invoices, payments, attempts and
    ledger rows); what segmenting those customers needs."""
    keep = pd.Index(pd.unique(pd.Series(list(customer_ids), dtype=object).astype(str)))
    cust = portfolio.customers
    customers = cust.loc[cust["customer_id"].astype(str).isin(keep).to_numpy()]
    inv = portfolio.invoices
    invoices = inv.loc[inv["customer_id"].astype(str).isin(keep).to_numpy()]
    ids = pd.Index(invoices["invoice_id"])

    def by_invoice(df: pd.DataFrame) -> pd.DataFrame:
        return df.loc[df["invoice_id"].isin(ids).to_numpy()]

    return Portfolio(
        customers,
        invoices,
        by_invoice(portfolio.payments),
        by_invoice(portfolio.attempts),
        by_invoice(portfolio.ledger),
    )


def partial_history(portfolio: Portfolio) -> pd.Series:
    """The customer_id (str) of every customer of ``portfolio`` loaded with only the planner's
    part of its history (``full_history`` False): its segment must come from the snapshot."""
    cust = portfolio.customers
    if "full_history" not in cust.columns:
        return pd.Series([], dtype=object)
    ids = cust["customer_id"].astype(str)
    return ids.loc[~cust["full_history"].to_numpy(bool)]


def segments_for(
    engine: Engine,
    portfolio: Portfolio,
    as_of: dt.datetime,
    policy: Policy,
    *,
    max_age: dt.timedelta | None = dt.timedelta(hours=48),
    features: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, SegmentsUsed]:
    """The segment frame for every customer of ``portfolio`` at ``as_of``: the snapshot's row
    where usable (see :func:`read_snapshot`), else segment_frame over that customer now.

    The result has segment_frame's shape and its row order (``portfolio.customers``), so it
    equals ``segment_frame(portfolio, as_of, policy)`` when the snapshot was written at
    ``as_of`` under ``policy``. The customers segmented on the fly need their whole payment
    history in ``portfolio``: a customer loaded with only the planner's part of it (column
    ``full_history`` False in ``portfolio.customers``, see ``dunning.portfolio``) is never
    segmented here. ``features``: only these features (None: all; see :func:`read_snapshot`).
    Raises ValueError for a naive ``as_of``, and for such a customer without a
    usable row (the snapshot changed since the load, or ``max_age`` differs from the load's):
    load the portfolio again.
    """
    as_of = _utc(as_of)
    ids = portfolio.customers["customer_id"].astype(str)
    snap = read_snapshot(
        engine, ids, policy=policy, as_of=as_of, max_age=max_age, features=features
    )
    missing = ids[~ids.isin(snap.index)]
    partial = partial_history(portfolio)
    if partial.isin(missing).any():
        raise ValueError(
            f"segments_for: {int(partial.isin(missing).sum())} customer(s) were loaded without "
            "their full payment history (a usable snapshot row at the load) and have no usable "
            "snapshot row now; load the portfolio again (segmenting a partial history would "
            "give a wrong segment)"
        )
    parts = [snap]
    if len(missing):
        now = segment_frame(subset_portfolio(portfolio, missing), as_of, policy)
        parts.append(now[[*_features(features), "segment"]])
    frame = pd.concat(parts) if len(parts) > 1 else snap
    frame = frame.iloc[pd.Index(frame.index).get_indexer(pd.Index(ids))]
    frame.index = pd.Index(ids.to_numpy(), name="customer_id")
    return frame, SegmentsUsed(len(ids) - len(missing), len(missing))


def snapshot_age(engine: Engine, now: dt.datetime | None = None) -> dt.timedelta | None:
    """How long ago the newest snapshot row was computed (None: no snapshot)."""
    with engine.connect() as conn:
        newest = conn.execute(select(func.max(CustomerSegment.computed_at))).scalar()
    computed = _instant(newest)
    return None if computed is None else (now or utcnow()) - computed


def snapshot_markdown(summary: pd.DataFrame, written: SnapshotWrite) -> str:
    """The segment-snapshot artifact: customers, open invoices and open balances per segment
    and currency (``summary`` from ``dunning.segments.rules.segment_summary``, balances in
    minor units, shown formatted), and the movement since the last snapshot. Counts only: no
    customer is named."""

    def stamp(instant: dt.datetime | None) -> str:
        return "-" if instant is None else instant.strftime("%Y-%m-%d %H:%M UTC")

    customers = int(summary.drop_duplicates("segment")["customers"].sum())
    m = written.movement
    new = int(m.loc[m["from_segment"] == NEW, "customers"].sum())
    lines = [
        f"# Customer segments as of {stamp(written.as_of)}",
        "",
        f"{customers:,} customer(s) in {summary['segment'].nunique()} segment(s); since the "
        f"last snapshot ({stamp(written.previous_as_of)}): {written.moved:,} changed segment, "
        f"{new:,} new.",
        "",
        "## Customers and open balances per segment",
        "",
        "| segment | customers | currency | open invoices | open balance |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for record in summary.to_dict("records"):
        cur = str(record["currency"])
        minor = int(record["open_balance_minor"])
        balance = format_money(from_minor(minor, cur), cur, "en_US") if cur else "-"
        lines.append(
            f"| {record['segment']} | {int(record['customers']):,} | {cur or '-'} | "
            f"{int(record['open_invoices']):,} | {balance} |"
        )
    lines += ["", "## Movement since the last snapshot", ""]
    changed = m.loc[m["from_segment"] != m["to_segment"]]
    if not len(changed):
        lines.append("No customer changed segment.")
    else:
        lines += ["| from | to | customers |", "| --- | --- | ---: |"]
        for record in changed.to_dict("records"):
            lines.append(
                f"| {record['from_segment']} | {record['to_segment']} | "
                f"{int(record['customers']):,} |"
            )
    stayed = int(m.loc[m["from_segment"] == m["to_segment"], "customers"].sum())
    lines += ["", f"{stayed:,} customer(s) kept their segment."]
    return "\n".join(lines) + "\n"

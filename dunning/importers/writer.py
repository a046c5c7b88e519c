"""The imperative shell of imports: load what a file refers to in bulk, write a plan in one
transaction, and export rejected rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Connection, Engine, Select, Table, bindparam, func, insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from dunning.csvsafe import write_csv
from dunning.db import analyze, check_ready
from dunning.db.models import Customer, Invoice, Payment, utcnow
from dunning.errors import ImportFailed
from dunning.importers.reader import Table as FileTable
from dunning.importers.reader import read_table
from dunning.importers.validate import (
    KINDS,
    Context,
    InvoiceRef,
    Kind,
    Plan,
    key_cells,
    plan_import,
)
from dunning.ledger.payments import ATTEMPTS, NewPayment, insert_attempts, record_payments
from dunning.masking import scrub

#: Rows per IN list or INSERT batch: well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 500
#: Called with (rows just done, total rows) as an import advances.
ProgressFn = Callable[[int, int], None]

#: An import that inserts or updates at least this many rows refreshes the table's planner
#: statistics afterwards (one ANALYZE of that table: ~0.2 s at a million rows).
ANALYZE_AFTER_ROWS = 10_000

TABLES: dict[str, Table] = {
    "customers": Customer.__table__,  # type: ignore[dict-item]
    "invoices": Invoice.__table__,  # type: ignore[dict-item]
    "payments": Payment.__table__,  # type: ignore[dict-item]
    "payment-attempts": ATTEMPTS,  # inserted by dunning.ledger.payments.insert_attempts
}


@dataclass
class ImportReport:
    """The outcome of one import: counts, the rejects file and every row problem."""

    kind: str
    file: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects_file: str | None = None
    errors: list[str] = field(default_factory=list)
    #: Rows imported with a caveat, as ``line N: column: problem`` (a phone without SMS).
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)


class InvalidRows(ImportFailed):
    """The file has invalid rows and nothing was imported; ``report.errors`` lists them."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        super().__init__(
            f"{report.file}: {report.rejected} invalid row(s); nothing was imported. Fix them, or "
            "pass --skip-invalid to import the valid rows and write the rejects to a CSV"
        )


def import_file(
    engine: Engine,
    kind: str,
    path: Path,
    *,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    progress: ProgressFn | None = None,
) -> ImportReport:
    """The report of importing the CSV/.xlsx file at ``path`` as ``kind`` in one transaction.

    Raises InvalidRows when a row is invalid and ``skip_invalid`` is false (nothing written),
    ImportFailed for file-level problems or when the database refuses the write.
    """
    spec = KINDS[kind]
    table = read_table(path)
    check_ready(engine)
    total = 2 * len(table.rows)
    advance: Callable[[int], None] | None = (lambda n: progress(n, total)) if progress else None
    report = ImportReport(kind=kind, file=str(path))
    try:
        with engine.begin() as conn:
            plan = plan_import(spec, table, load_context(conn, spec, table), advance)
            report.rejected = len(plan.rejected)
            report.errors = [str(e) for e in sorted(plan.errors)]
            report.warnings = [str(w) for w in sorted(plan.warnings)]
            if plan.rejected and not skip_invalid:
                raise InvalidRows(report)
            if kind == "payments":
                record_planned_payments(conn, plan, advance)
            else:
                write_plan(conn, spec, plan, advance)
    except SQLAlchemyError as exc:
        detail = scrub(str(getattr(exc, "orig", exc)).splitlines()[0])[:300]
        raise ImportFailed(
            f"{path}: the database refused the import ({detail}); nothing was imported"
        ) from None
    report.inserted, report.updated, report.unchanged = (
        len(plan.inserts),
        len(plan.updates),
        plan.unchanged,
    )
    if report.inserted + report.updated >= ANALYZE_AFTER_ROWS:
        # A bulk load leaves the planner guessing (see dunning.db.analyze); the next
        # reminder run's reads are planned on the new row counts.
        analyze(engine, (TABLES[kind].name,))
    if plan.rejected:
        target = rejects_path or path.with_name(path.name + ".rejects.csv")
        write_rejects(target, table, plan)
        report.rejects_file = str(target)
    return report


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _select_in(
    conn: Connection, query: Select[Any], column: Column[Any], values: Iterable[Any]
) -> Iterator[Any]:
    """Rows of ``query`` where ``column`` is in ``values``, one IN list per chunk."""
    for chunk in _chunks(sorted(values)):
        yield from conn.execute(query.where(column.in_(chunk)))


def _stored(
    conn: Connection, table: Table, key: str, keys: Iterable[Any], by: Column[Any] | None = None
) -> dict[str, dict[str, Any]]:
    rows = _select_in(conn, select(table), table.c[key] if by is None else by, keys)
    return {row._mapping[key]: dict(row._mapping) for row in rows}


def load_context(conn: Connection, kind: Kind, table: FileTable) -> Context:
    """The stored rows ``table`` refers to, read with one query per chunk of keys."""
    customers, invoices = TABLES["customers"], TABLES["invoices"]
    if kind.name == "customers":
        return Context(
            existing=_stored(conn, customers, "customer_id", key_cells(table, "customer_id"))
        )
    if kind.name == "invoices":
        known = _select_in(
            conn,
            select(customers.c.customer_id),
            customers.c.customer_id,
            key_cells(table, "customer_id"),
        )
        return Context(
            existing=_stored(conn, invoices, "invoice_number", key_cells(table, "invoice_number")),
            customers=frozenset(row.customer_id for row in known),
        )
    refs = list(
        _select_in(
            conn,
            select(
                invoices.c.id, invoices.c.invoice_number, invoices.c.currency, invoices.c.amount
            ),
            invoices.c.invoice_number,
            key_cells(table, "invoice_number"),
        )
    )
    ids = [r.id for r in refs]
    payments = TABLES["payments"]
    paid: dict[int, Decimal] = {}
    sums = select(payments.c.invoice_id, func.sum(payments.c.amount).label("paid")).group_by(
        payments.c.invoice_id
    )
    for row in _select_in(conn, sums, payments.c.invoice_id, ids):
        paid[row.invoice_id] = Decimal(row.paid)
    target = TABLES[kind.name]
    return Context(
        existing=_stored(conn, target, "external_id", ids, by=target.c.invoice_id),
        invoices={
            r.invoice_number: InvoiceRef(
                r.id, r.currency, Decimal(r.amount), paid.get(r.id, Decimal(0))
            )
            for r in refs
        },
    )


def write_plan(
    conn: Connection, kind: Kind, plan: Plan, advance: Callable[[int], None] | None = None
) -> None:
    """Nothing; executes ``plan``'s inserts and updates in batches on ``conn``.

    Raises ValueError for payments: they are recorded only through the one payment path
    (:func:`record_planned_payments`), which settles invoices and the ledger.
    """
    if kind.name == "payments":
        raise ValueError("payments are recorded with record_planned_payments, not write_plan")
    table = TABLES[kind.name]
    now = utcnow()
    stamps = {c: now for c in ("created_at", "updated_at") if c in table.c}
    for chunk in _chunks(plan.inserts):
        rows = [{**stamps, **rec} for rec in chunk]
        if table is ATTEMPTS:
            insert_attempts(conn, rows)  # the one writer of payment attempts
        else:
            conn.execute(insert(table), rows)
        if advance:
            advance(len(chunk))
    # Updates are grouped by their column set so each group is one executemany statement.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for rec in plan.updates:
        groups.setdefault(tuple(sorted(rec)), []).append(rec)
    touched = {"updated_at": now} if "updated_at" in table.c else {}
    for columns, recs in groups.items():
        statement = (
            sql_update(table)
            .where(table.c[kind.key] == bindparam("k_" + kind.key))
            .values({c: bindparam("v_" + c) for c in columns if c != kind.key} | touched)
        )
        for chunk in _chunks(recs):
            conn.execute(
                statement,
                [
                    {
                        "k_" + kind.key: r[kind.key],
                        **{"v_" + c: r[c] for c in columns if c != kind.key},
                    }
                    for r in chunk
                ],
            )
            if advance:
                advance(len(chunk))
    if advance:
        advance(plan.unchanged + len(plan.rejected))


def record_planned_payments(
    conn: Connection, plan: Plan, advance: Callable[[int], None] | None = None
) -> None:
    """Nothing; records ``plan``'s payments through the one payment path, on ``conn``.

    Imported payments settle invoices, stop planned reminders and set the reminders'
    ``paid_at`` exactly as a webhook's do (``dunning.ledger.payments.record_payments``),
    500 rows per batch, inside the import's transaction.
    """
    # Bound to the import's connection, the session joins its transaction (never commits it).
    with Session(bind=conn) as session:
        for chunk in _chunks(plan.inserts):
            record_payments(
                session,
                [
                    NewPayment(
                        r["invoice_id"], r["amount"], r["paid_at"], r["external_id"], r["source"]
                    )
                    for r in chunk
                ],
            )
            if advance:
                advance(len(chunk))
        session.flush()
    if advance:
        advance(plan.unchanged + len(plan.rejected))


def write_rejects(path: Path, table: FileTable, plan: Plan) -> Path:
    """``path``, after writing the rejected rows there with their line and reasons."""
    reasons: dict[int, list[str]] = {}
    for error in sorted(plan.errors):
        reasons.setdefault(error.line, []).append(f"{error.column}: {error.problem}")
    rows = (
        [row.line, *(row.cells[c] for c in table.header), "; ".join(reasons[row.line])]
        for row in plan.rejected
    )
    return write_csv(path, ["line", *table.header, "errors"], rows)

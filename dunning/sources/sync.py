"""Syncing a source: pull its records, validate them like an import, write them in one
transaction, quarantine what is invalid, apply voids and deletions, store the cursor.

Idempotent: re-running a sync with nothing changed writes nothing (records compare equal;
payments and attempts are keyed by their external id). A sync that fails writes nothing but
its error in ``source_state``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from dunning.core.skip import SkipReason
from dunning.db import check_ready
from dunning.db.models import Invoice, Payment, PaymentAttempt, utcnow
from dunning.errors import DunningError, ImportFailed
from dunning.importers import fields
from dunning.importers.reader import Row
from dunning.importers.reader import Table as RecordTable
from dunning.importers.validate import KINDS, Plan, classify, validate_rows
from dunning.importers.writer import load_context, write_plan
from dunning.ledger.events import skip_open_reminders
from dunning.ledger.payments import NewPayment, record_attempt, record_payments
from dunning.masking import scrub
from dunning.sources import state
from dunning.sources.base import IMPORT_KINDS, RECORD_TYPES, Pull, PullProgress, Record, Source

_CHUNK = 500
#: Reasons a reminder is skipped when its invoice stops being open in the source.


class SyncFailed(DunningError):
    """A sync could not complete; nothing was written but the error in source_state."""


@dataclass
class SyncReport:
    """The outcome of one sync: counts per record type, quarantined records, cost."""

    source: str
    kind: str
    full: bool
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Up to 100 quarantined records: record_type, source_id, reason.
    quarantined: list[dict[str, str]] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0
    cursor: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)

    def total(self, what: str) -> int:
        """The sum of one count (``inserted``, ``quarantined`` ...) over the record types."""
        return sum(c.get(what, 0) for c in self.counts.values())


def sync_source(
    engine: Engine, source: Source, *, full: bool = False, progress: PullProgress | None = None
) -> SyncReport:
    """The report of syncing ``source`` into the database (since its cursor unless ``full``).

    Raises SyncFailed when the source cannot be read or the database refuses the write; the
    error (secrets and personal data scrubbed) is stored as the source's last error.
    """
    check_ready(engine)
    started = time.monotonic()
    with engine.connect() as conn:
        stored = state.load_state(conn, source.name)
    cursor = None if full or stored is None else stored.get("cursor")
    report = SyncReport(source.name, source.kind, full=cursor is None)
    try:
        pull = source.pull(cursor, progress)
    except DunningError as exc:
        message = scrub(str(exc))
        state.record_failure(engine, source.name, source.kind, message)
        prefix = "" if message.startswith(f"source {source.name}:") else f"source {source.name}: "
        raise SyncFailed(prefix + message) from None
    try:
        with Session(engine) as session, session.begin():
            _apply(session, source, pull, report)
            state.save_state(
                session.connection(),
                source.name,
                source.kind,
                cursor=pull.cursor,
                last_success_at=utcnow(),
                last_attempt_at=utcnow(),
                last_error=None,
                counts=report.counts,
            )
    except (ImportFailed, SQLAlchemyError) as exc:
        detail = exc if isinstance(exc, ImportFailed) else getattr(exc, "orig", exc)
        message = scrub(str(detail).splitlines()[0])[:400]
        state.record_failure(engine, source.name, source.kind, message)
        raise SyncFailed(f"source {source.name}: {message}; nothing was written") from None
    report.requests = pull.requests
    report.cursor = pull.cursor
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _apply(session: Session, source: Source, pull: Pull, report: SyncReport) -> None:
    conn = session.connection()
    now = utcnow()
    for record_type in RECORD_TYPES:
        records = _latest(pull.records[record_type])
        counts = {"inserted": 0, "updated": 0, "unchanged": 0, "quarantined": 0}
        reasons: dict[str, str] = {}
        live = [r for r in records if not r.deleted]
        if record_type in ("customers", "invoices"):
            _apply_entities(conn, source.name, record_type, live, counts, reasons)
        else:
            _apply_money(session, source, record_type, live, counts, reasons)
        if record_type == "invoices":
            gone = {r.source_id for r in records if r.deleted}
            counts["deleted"] = _delete_invoices(
                conn, source.name, gone, {r.source_id for r in live}, pull.complete
            )
        state.quarantine(conn, source.name, record_type, reasons, now)
        state.release(
            conn,
            source.name,
            record_type,
            [r.source_id for r in live if r.source_id not in reasons],
        )
        if pull.complete:
            state.release_unlisted(conn, source.name, record_type, {r.source_id for r in live})
        counts["quarantined"] = len(reasons)
        report.counts[record_type] = counts
        report.quarantined += [
            {"record_type": record_type, "source_id": sid, "reason": why}
            for sid, why in sorted(reasons.items())
        ][:100]
    report.quarantined = report.quarantined[:100]


def _latest(records: list[Record]) -> list[Record]:
    """One record per source id, the last one pulled (a changed object appears once per
    change in an event stream)."""
    return list({r.source_id: r for r in records}.values())


def _table(name: str, record_type: str, records: list[Record]) -> RecordTable:
    """The records as an import table (lines 1..n in record order) for validate_rows."""
    header: dict[str, None] = {}
    for r in records:
        header.update(dict.fromkeys(r.values))
    rows = [Row(i, dict(r.values)) for i, r in enumerate(records, start=1)]
    return RecordTable(name=f"source {name} ({record_type})", header=list(header), rows=rows)


def _reason(errors: list[Any]) -> str:
    return "; ".join(f"{e.column}: {e.problem}" for e in errors)


def _key(value: Any) -> str | None:
    try:
        return None if fields.is_blank(value) else fields.text(value, 10**6)
    except ValueError:
        return None


def _apply_entities(
    conn: Connection,
    name: str,
    record_type: str,
    records: list[Record],
    counts: dict[str, int],
    reasons: dict[str, str],
) -> None:
    """Customers or invoices: ownership check, validation, upsert, stop reminders on
    invoices that are no longer open."""
    if not records:
        return
    spec = KINDS[IMPORT_KINDS[record_type]]
    model_table = _model(record_type)
    owners = _owners(conn, model_table, spec.key, {_key(r.values.get(spec.key)) for r in records})
    mine = []
    for r in records:
        owner = owners.get(_key(r.values.get(spec.key)) or "")
        if owner is not None and owner != name:
            label = "customer" if record_type == "customers" else "invoice"
            reasons[r.source_id] = (
                f"{spec.key}: {label} {_key(r.values.get(spec.key))!r} exists in source "
                f"{owner!r} and in source {name!r}; an id must come from one source only: "
                f"remove it from one of them"
            )
        else:
            mine.append(r)
    if not mine:
        return
    table = _table(name, record_type, mine)
    ctx = load_context(conn, spec, table)
    paid = _paid_sums(conn, ctx.existing) if record_type == "invoices" else {}
    plan = Plan()
    for row, rec, errors in validate_rows(spec, table, ctx):
        record = mine[row.line - 1]
        if errors:
            reasons[record.source_id] = _reason(errors)
            continue
        rec = {**rec, "source": name, "source_id": record.source_id}
        stored = ctx.existing.get(str(rec[spec.key]))
        if (
            record_type == "invoices"
            and stored
            and stored["status"] == "paid"
            and rec.get("status", "open") == "open"
            and Decimal(rec.get("amount") or stored["amount"]) <= paid.get(stored["id"], Decimal(0))
        ):
            # Settled by payments we recorded (a sync, the webhook): the source's "open" is
            # behind, and flipping it back each sync would make re-syncs change something.
            rec["status"] = "paid"
        classify(plan, spec, rec, stored)
    write_plan(conn, spec, plan)
    counts["inserted"] += len(plan.inserts)
    counts["updated"] += len(plan.updates)
    counts["unchanged"] += plan.unchanged
    if record_type == "invoices":
        changed = [r[spec.key] for r in plan.updates]
        _stop_reminders(
            conn,
            select(Invoice.id, Invoice.status).where(Invoice.status != "open"),
            Invoice.invoice_number,
            changed,
        )


def _paid_sums(conn: Connection, stored: dict[str, dict[str, Any]]) -> dict[int, Decimal]:
    """The payments recorded per stored invoice id (refunds negative)."""
    ids = sorted(r["id"] for r in stored.values())
    sums: dict[int, Decimal] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            select(Payment.invoice_id, func.sum(Payment.amount))
            .where(Payment.invoice_id.in_(ids[start : start + _CHUNK]))
            .group_by(Payment.invoice_id)
        )
        sums.update({int(i): Decimal(total) for i, total in rows})
    return sums


def _model(record_type: str) -> Any:
    from dunning.importers.writer import TABLES

    return TABLES[IMPORT_KINDS[record_type]]


def _owners(conn: Connection, table: Any, key: str, keys: set[str | None]) -> dict[str, str]:
    """The source each stored ``key`` belongs to."""
    values = sorted(k for k in keys if k)
    owners: dict[str, str] = {}
    for start in range(0, len(values), _CHUNK):
        rows = conn.execute(
            select(table.c[key], table.c.source).where(
                table.c[key].in_(values[start : start + _CHUNK])
            )
        )
        owners.update({str(k): str(s) for k, s in rows})
    return owners


def _stop_reminders(
    conn: Connection,
    query: Any,
    column: Any,
    values: list[Any],
    reason: SkipReason | None = None,
) -> None:
    """Nothing; skips the planned or claimed reminders of the invoices ``query`` selects
    among ``column`` in ``values`` (reason: ``reason``, else the invoice's status)."""
    for start in range(0, len(values), _CHUNK):
        by_reason: dict[SkipReason, list[int]] = {}
        for invoice_id, status in conn.execute(
            query.where(column.in_(values[start : start + _CHUNK]))
        ):
            by_reason.setdefault(reason or SkipReason(status), []).append(invoice_id)
        for why, ids in by_reason.items():
            skip_open_reminders(conn, invoice_ids=ids, reason=why)


def _delete_invoices(
    conn: Connection, name: str, gone: set[str], listed: set[str], complete: bool
) -> int:
    """The number of this source's invoices voided because the source deleted them (named in
    ``gone``, or, after a complete pull, not ``listed``); their reminders stop."""
    if not gone and not complete:
        return 0
    rows = conn.execute(
        select(Invoice.id, Invoice.source_id, Invoice.invoice_number).where(
            Invoice.source == name, Invoice.status != "void"
        )
    ).all()
    ids = [
        r.id
        for r in rows
        if r.source_id in gone or (complete and (r.source_id or r.invoice_number) not in listed)
    ]
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        conn.execute(
            update(Invoice).where(Invoice.id.in_(chunk)).values(status="void", updated_at=utcnow())
        )
    _stop_reminders(
        conn, select(Invoice.id, Invoice.status), Invoice.id, ids, SkipReason.DELETED_IN_SOURCE
    )
    return len(ids)


def _apply_money(
    session: Session,
    source: Source,
    record_type: str,
    records: list[Record],
    counts: dict[str, int],
    reasons: dict[str, str],
) -> None:
    """Payments or attempts: skip those already stored, validate the rest (a payment never
    exceeds the balance), record them through the one payment path."""
    if not records:
        return
    conn = session.connection()
    model = Payment if record_type == "payments" else PaymentAttempt
    explicit = [r.external_id for r in records if r.external_id]
    stored: set[str] = set()
    for start in range(0, len(explicit), _CHUNK):
        stored.update(
            conn.scalars(
                select(model.external_id).where(
                    model.external_id.in_(explicit[start : start + _CHUNK])
                )
            )
        )
    todo = [r for r in records if not (r.external_id and r.external_id in stored)]
    counts["unchanged"] += len(records) - len(todo)
    if not todo:
        return
    _resolve_invoices(conn, source.name, todo)
    spec = KINDS[IMPORT_KINDS[record_type]]
    table = _table(source.name, record_type, todo)
    ctx = load_context(conn, spec, table)
    # Records without an id of their own are keyed like a CSV row (invoice, time, amount):
    # "csv:..." for a files source, so `dunning import` and the source never count twice.
    prefix = "csv:" if source.kind == "files" else f"{source.name}:"
    ctx.existing = {
        "csv:" + k[len(prefix) :]: v for k, v in ctx.existing.items() if k.startswith(prefix)
    }
    payments: list[NewPayment] = []
    for row, rec, errors in validate_rows(spec, table, ctx):
        record = todo[row.line - 1]
        if errors:
            reasons[record.source_id] = _reason(errors)
            continue
        if rec["external_id"] in ctx.existing and not record.external_id:
            counts["unchanged"] += 1
            continue
        external_id = record.external_id or prefix + rec["external_id"].removeprefix("csv:")
        if record_type == "payments":
            payments.append(
                NewPayment(
                    rec["invoice_id"], rec["amount"], rec["paid_at"], external_id, source.name[:32]
                )
            )
            continue
        invoice = session.get(Invoice, rec["invoice_id"])
        assert invoice is not None  # validate_rows only passes known invoices
        done = record_attempt(
            session,
            invoice,
            rec["attempted_at"],
            rec["outcome"],
            rec.get("failure_code"),
            external_id,
            source.name[:32],
        )
        counts["inserted" if done else "unchanged"] += 1
    for kinds in record_payments(session, payments):
        counts["inserted" if kinds else "unchanged"] += 1
    session.flush()


def _resolve_invoices(conn: Connection, name: str, records: list[Record]) -> None:
    """Nothing; fills in ``invoice_number`` of records that name their invoice only by its id
    in the source (left as that id, and so quarantined as unknown, when not found)."""
    wanted = sorted(
        {
            r.invoice_source_id
            for r in records
            if r.invoice_source_id and fields.is_blank(r.values.get("invoice_number"))
        }
    )
    numbers: dict[str, str] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = conn.execute(
            select(Invoice.source_id, Invoice.invoice_number).where(
                Invoice.source == name, Invoice.source_id.in_(wanted[start : start + _CHUNK])
            )
        )
        numbers.update({str(sid): str(number) for sid, number in rows})
    for r in records:
        if r.invoice_source_id in wanted:
            r.values["invoice_number"] = numbers.get(r.invoice_source_id, r.invoice_source_id)

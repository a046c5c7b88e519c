"""The pure core of imports: rows plus what the database already holds -> a plan and errors.

No database or file access here: ``plan_import`` gets a ``Table`` (see ``reader``) and a
``Context`` (the existing rows the file refers to) and returns what to insert, what to
update, how many rows are unchanged and every problem as ``line N: column: problem``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dunning.core.holds import source_invoice_status, source_paused_until
from dunning.db.models import ATTEMPT_OUTCOMES, INVOICE_STATUSES
from dunning.errors import ImportFailed
from dunning.importers import fields
from dunning.importers.reader import Row, Table
from dunning.money import quantize
from dunning.regions import default_region

Record = dict[str, Any]


@dataclass(frozen=True, order=True)
class RowError:
    """One problem in one cell (or the whole row when column is ``row``)."""

    line: int
    column: str
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}: {self.problem}"


@dataclass(frozen=True)
class InvoiceRef:
    """What a payment or attempt row needs to know about its invoice."""

    id: int
    currency: str
    amount: Decimal
    paid: Decimal  # sum of the payments already stored


@dataclass
class Context:
    """Existing rows the file refers to, loaded in bulk by the writer."""

    #: key (customer_id, invoice_number or external_id) -> stored column values
    existing: dict[str, Record] = field(default_factory=dict)
    #: customer ids that exist (invoice imports)
    customers: frozenset[str] = frozenset()
    #: invoice_number -> reference (payment and attempt imports)
    invoices: dict[str, InvoiceRef] = field(default_factory=dict)


@dataclass
class Plan:
    """What an import will write, and what it rejected."""

    inserts: list[Record] = field(default_factory=list)
    updates: list[Record] = field(default_factory=list)
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    rejected: list[Row] = field(default_factory=list)
    #: Problems that do not stop the row (a phone that cannot receive SMS).
    warnings: list[RowError] = field(default_factory=list)


class _Cells:
    """A row being validated: parses cells and collects every problem, not just the first."""

    def __init__(self, row: Row) -> None:
        self.row = row
        self.errors: list[RowError] = []
        self.warnings: list[RowError] = []

    def warn(self, column: str, problem: str) -> None:
        self.warnings.append(RowError(self.row.line, column, problem))

    def present(self, column: str) -> bool:
        return column in self.row.cells

    def fail(self, column: str, problem: str) -> None:
        self.errors.append(RowError(self.row.line, column, problem))

    def get(
        self,
        column: str,
        parse: Callable[..., Any],
        *args: Any,
        required: bool = False,
        **kwargs: Any,
    ) -> Any:
        cell = self.row.cells.get(column)
        if fields.is_blank(cell):
            if required:
                self.fail(column, "is required")
            return None
        try:
            return parse(cell, *args, **kwargs)
        except ValueError as exc:
            self.fail(column, str(exc))
            return None


@dataclass(frozen=True)
class Kind:
    """An importable file type: its columns, key and row parser."""

    name: str
    key: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    parse: Callable[[_Cells, Context], Record]
    defaults: Record


def _customer(c: _Cells, ctx: Context) -> Record:
    rec: Record = {
        "customer_id": c.get("customer_id", fields.text, 64, required=True),
        "country": c.get("country", fields.country, required=True),
        "timezone": c.get("timezone", fields.timezone, required=True),
        "locale": c.get("locale", fields.locale, required=True),
    }
    if c.present("name"):
        rec["name"] = c.get("name", fields.text, 200)
    if c.present("email"):
        rec["email"] = c.get("email", fields.email)
    if c.present("phone"):
        rec["phone"] = c.get("phone", fields.phone, rec["country"])
        cell = c.row.cells["phone"]  # the cell, not E.164, which drops an extension
        reason = rec["phone"] and fields.not_mobile_reason(
            cell if isinstance(cell, str) else rec["phone"], rec["country"]
        )
        rec["not_mobile"] = bool(reason)
        if reason:
            c.warn(
                "phone",
                f"{reason}: the customer is imported, SMS reminders are skipped "
                "(not_mobile); give a mobile number to receive SMS",
            )
    for flag in ("sms_consent", "voice_consent", "email_opt_out", "sms_opt_out"):
        if c.present(flag):
            rec[flag] = bool(c.get(flag, fields.boolean))
    if c.present("paused_until"):
        rec["paused_until"] = c.get("paused_until", fields.date)
    stored = ctx.existing.get(rec["customer_id"] or "")
    if (c.present("region") or not stored) and rec["country"] and rec["timezone"]:
        # Empty or left out on a new customer: the region the time zone names, if any.
        rec["region"] = c.get("region", fields.region, rec["country"]) or default_region(
            rec["timezone"], rec["country"]
        )
    if stored and stored.get("erased_at"):
        c.fail(
            "customer_id",
            f"customer {rec['customer_id']!r} was erased; remove the row "
            "(erased customers are never re-imported)",
        )
    if stored:
        # An opt-out (possibly a STOP reply recorded since the last export) outlives a
        # re-import that still says false: imports may record opt-outs, never clear them.
        for flag in ("email_opt_out", "sms_opt_out"):
            if flag in rec and stored.get(flag):
                rec[flag] = True
        if "paused_until" in rec:
            rec["paused_until"] = source_paused_until(rec["paused_until"], stored)
    return rec


def _invoice(c: _Cells, ctx: Context) -> Record:
    rec: Record = {
        "invoice_number": c.get("invoice_number", fields.text, 64, required=True),
        "customer_id": c.get("customer_id", fields.text, 64, required=True),
        "currency": c.get("currency", fields.currency, required=True),
        "issued_on": c.get("issued_on", fields.date, required=True),
        "due_on": c.get("due_on", fields.date, required=True),
    }
    if rec["customer_id"] and rec["customer_id"] not in ctx.customers:
        c.fail(
            "customer_id",
            f"unknown customer {rec['customer_id']!r}; import it with "
            "`dunning import customers` first",
        )
    if rec["currency"]:
        rec["amount"] = c.get(
            "amount", fields.amount, rec["currency"], allow_zero=True, required=True
        )
    if rec["issued_on"] and rec["due_on"] and rec["due_on"] < rec["issued_on"]:
        c.fail("due_on", f"{rec['due_on']} is before issued_on {rec['issued_on']}")
    if c.present("status"):
        rec["status"] = c.get("status", fields.choice, INVOICE_STATUSES) or "open"
        stored = ctx.existing.get(rec["invoice_number"] or "")
        if stored and stored.get("disputed_by_operator"):
            # An operator's dispute outlives a re-import; paid or void from the source wins.
            rec["status"], rec["disputed_by_operator"] = source_invoice_status(
                rec["status"], stored
            )
    if c.present("payment_link"):
        rec["payment_link"] = c.get("payment_link", fields.url)
    if c.present("promise_to_pay_on"):
        rec["promise_to_pay_on"] = c.get("promise_to_pay_on", fields.date)
    return rec


def _invoice_ref(c: _Cells, ctx: Context) -> tuple[str | None, InvoiceRef | None]:
    number = c.get("invoice_number", fields.text, 64, required=True)
    ref = ctx.invoices.get(number) if number else None
    if number and ref is None:
        c.fail(
            "invoice_number",
            f"unknown invoice {number!r}; import it with `dunning import invoices` first",
        )
    return number, ref


def _payment(c: _Cells, ctx: Context) -> Record:
    number, ref = _invoice_ref(c, ctx)
    paid_at = c.get("paid_at", fields.instant, required=True)
    amount = (
        c.get("amount", fields.amount, ref.currency, allow_zero=False, required=True)
        if ref
        else None
    )
    if not (ref and paid_at and amount is not None):
        return {}
    return {
        "invoice_id": ref.id,
        "amount": amount,
        "paid_at": paid_at,
        "source": "import",
        "external_id": f"csv:{number}:{paid_at.isoformat()}:{amount}",
    }


def _attempt(c: _Cells, ctx: Context) -> Record:
    number, ref = _invoice_ref(c, ctx)
    attempted_at = c.get("attempted_at", fields.instant, required=True)
    rec: Record = {
        "outcome": c.get("outcome", fields.choice, ATTEMPT_OUTCOMES, required=True),
        "failure_code": c.get("failure_code", fields.text, 64),
    }
    if not (ref and attempted_at):
        return {}
    return {
        "invoice_id": ref.id,
        "attempted_at": attempted_at,
        **rec,
        "source": "import",
        "external_id": f"csv:{number}:{attempted_at.isoformat()}",
    }


KINDS: dict[str, Kind] = {
    "customers": Kind(
        "customers",
        "customer_id",
        ("customer_id", "country", "timezone", "locale"),
        (
            "name",
            "email",
            "phone",
            "sms_consent",
            "voice_consent",
            "email_opt_out",
            "sms_opt_out",
            "paused_until",
            "region",
        ),
        _customer,
        {
            "name": None,
            "email": None,
            "phone": None,
            "not_mobile": False,
            "sms_consent": False,
            "voice_consent": False,
            "email_opt_out": False,
            "sms_opt_out": False,
            "paused_until": None,
            "region": None,
        },
    ),
    "invoices": Kind(
        "invoices",
        "invoice_number",
        ("invoice_number", "customer_id", "currency", "amount", "issued_on", "due_on"),
        ("status", "payment_link", "promise_to_pay_on"),
        _invoice,
        {"status": "open", "payment_link": None, "promise_to_pay_on": None},
    ),
    "payments": Kind(
        "payments", "external_id", ("invoice_number", "amount", "paid_at"), (), _payment, {}
    ),
    "payment-attempts": Kind(
        "payment-attempts",
        "external_id",
        ("invoice_number", "attempted_at", "outcome"),
        ("failure_code",),
        _attempt,
        {"failure_code": None},
    ),
}


def check_header(kind: Kind, table: Table) -> None:
    """Nothing; raises ImportFailed naming missing and unknown columns."""
    missing = [c for c in kind.required if c not in table.header]
    unknown = [c for c in table.header if c not in kind.required + kind.optional]
    problems = []
    if missing:
        problems.append(f"missing required column(s) {', '.join(missing)}")
    if unknown:
        # Shown quoted when unprintable (a NUL byte), so the name is visible in the message.
        problems.append(
            f"unknown column(s) {', '.join(c if c.isprintable() else repr(c) for c in unknown)}"
        )
    if problems:
        raise ImportFailed(
            f"{table.name}: line 1: {'; '.join(problems)}. A {kind.name} file has the columns "
            f"{', '.join(kind.required)} (required) and {', '.join(kind.optional) or 'no others'}"
            " (optional)"
        )


def key_cells(table: Table, column: str) -> set[str]:
    """The distinct non-blank values of ``column`` in the file, as the parsers read them."""
    return {
        fields.text(r.cells[column], 10**6)
        for r in table.rows
        if column in r.cells and not fields.is_blank(r.cells[column])
    }


def validate_rows(
    kind: Kind,
    table: Table,
    ctx: Context,
    advance: Callable[[int], None] | None = None,
    warnings: list[RowError] | None = None,
) -> Iterator[tuple[Row, Record, list[RowError]]]:
    """Each row of ``table`` with its parsed record and its problems (empty when valid).

    The one validation path: CSV/Excel imports and every source's sync use it. Problems that
    do not reject a row are appended to ``warnings`` when given. Raises ImportFailed when the
    header lacks a required column or names an unknown one.
    """
    check_header(kind, table)
    first_line: dict[str, int] = {}
    paid = {number: ref.paid for number, ref in ctx.invoices.items()}
    for i, row in enumerate(table.rows, start=1):
        if advance and i % 1000 == 0:
            advance(1000)
        cells = _Cells(row)
        if row.overflow:
            cells.fail(
                "row",
                f"has {row.overflow} cell(s) beyond the {len(table.header)} "
                "header columns; quote cells that contain commas",
            )
        rec = kind.parse(cells, ctx)
        key = rec.get(kind.key)
        if key is not None and key in first_line:
            label = "payment" if kind.name == "payments" else "attempt"
            column = "invoice_number" if kind.key == "external_id" else kind.key
            what = (
                f"duplicate {label} (same invoice and time as line {first_line[key]})"
                if kind.key == "external_id"
                else f"duplicate {kind.key} {key!r} (first on line {first_line[key]})"
            )
            cells.fail(column, what)
        elif key is not None:
            first_line[key] = row.line
        if kind.name == "payments" and not cells.errors and key not in ctx.existing:
            _check_balance(cells, rec, ctx, paid, fields.text(row.cells["invoice_number"], 64))
        if warnings is not None and not cells.errors:
            warnings.extend(cells.warnings)
        yield row, rec, cells.errors
    if advance:
        advance(len(table.rows) % 1000)


def plan_import(
    kind: Kind, table: Table, ctx: Context, advance: Callable[[int], None] | None = None
) -> Plan:
    """The inserts, updates, unchanged count and errors of importing ``table`` over ``ctx``."""
    plan = Plan()
    for row, rec, errors in validate_rows(kind, table, ctx, advance, plan.warnings):
        if errors:
            plan.errors.extend(errors)
            plan.rejected.append(row)
            continue
        classify(plan, kind, rec, ctx.existing.get(str(rec.get(kind.key))))
    return plan


def _check_balance(
    cells: _Cells, rec: Record, ctx: Context, paid: dict[str, Decimal], number: str
) -> None:
    ref = ctx.invoices[number]
    balance = quantize(ref.amount - paid[number], ref.currency)
    if rec["amount"] > balance:
        cells.fail(
            "amount",
            f"{rec['amount']} exceeds the balance {balance} {ref.currency} of "
            f"invoice {number} (amount {quantize(ref.amount, ref.currency)} "
            f"minus {quantize(paid[number], ref.currency)} already paid)",
        )
    else:
        paid[number] += rec["amount"]


def classify(plan: Plan, kind: Kind, rec: Record, stored: Record | None) -> None:
    """Nothing; adds ``rec`` to ``plan`` as an insert, an update or an unchanged row."""
    if stored is None:
        plan.inserts.append({**kind.defaults, **rec})
    elif any(stored.get(col) != value for col, value in rec.items()):
        plan.updates.append(rec)
    else:
        plan.unchanged += 1

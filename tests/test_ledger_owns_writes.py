"""One home per write: only dunning/ledger/ writes the reminders table, only dunning/runs.py
writes reminder_runs, only dunning/ledger/payments.py inserts payments and
payment attempts, and the flow body
holds no SQL. A static scan of the package's source (ast), so a new writer elsewhere fails
here before it ships."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import dunning
from dunning.db.models import Base, Reminder

PACKAGE = Path(dunning.__file__).parent
#: Test and demo tooling builds scenarios directly; it is not the product (never imported).
TOOLING = PACKAGE / "devtools"
#: Ledger-state columns no other table has: a store to one of them is a reminder write whatever
#: the variable is called (message fields such as ``subject`` are shared with provider payloads).
REMINDER_ONLY = {
    "claimed_by",
    "claimed_at",
    "lease_expires_at",
    "sent_at",
    "opened_at",
    "clicked_at",
    "bounced_at",
    "replied_at",
    "failed_at",
    "call_outcome",
} - {
    c.name
    for table in Base.metadata.sorted_tables
    if table.name != Reminder.__tablename__
    for c in table.columns
}
_SQL_WRITE = r"(?is)\b(insert\s+into|update|delete\s+from)\s+{table}\b"


def _sources(under: Path = PACKAGE) -> list[tuple[str, ast.Module, str]]:
    out = []
    for path in sorted(under.rglob("*.py")):
        if TOOLING in path.parents:
            continue
        text = path.read_text(encoding="utf-8")
        out.append((path.relative_to(PACKAGE.parent).as_posix(), ast.parse(text), text))
    return out


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def _table_writes(tree: ast.Module, model: str, table: str) -> list[str]:
    """Statements in ``tree`` that write ``model`` (its class or ``__table__``) or ``table``
    (raw SQL), as ``line: code``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _call_name(node)
            target = ast.unparse(node.args[0]) if node.args else ""
            if name in ("insert", "update", "delete") and re.search(rf"\b{model}\b", target):
                found.append(f"{node.lineno}: {ast.unparse(node)[:80]}")
            elif name == model or (
                name in ("insert", "update", "delete")
                and isinstance(node.func, ast.Attribute)
                and re.search(rf"\b{model}\b", ast.unparse(node.func.value))
            ):
                found.append(f"{node.lineno}: {ast.unparse(node)[:80]}")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr == "__table__"
            and ast.unparse(node.value) == model
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)} (Core writes on the table)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.search(_SQL_WRITE.format(table=table), node.value):
                found.append(f"{node.lineno}: SQL {node.value[:60]!r}")
    return found


def _reminder_attribute_writes(tree: ast.Module) -> list[str]:
    """ORM writes to a loaded reminder: ``reminder.status = ...``, ``setattr(reminder, ...)``,
    or a store to a column only reminders have."""
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store):
                    owner = ast.unparse(sub.value).lower()
                    if "reminder" in owner or sub.attr in REMINDER_ONLY:
                        found.append(f"{node.lineno}: {ast.unparse(target)[:80]}")
        if isinstance(node, ast.Call) and _call_name(node) == "setattr" and node.args:
            if "reminder" in ast.unparse(node.args[0]).lower():
                found.append(f"{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_only_the_ledger_package_writes_the_reminders_table() -> None:
    ledger = PACKAGE / "ledger"
    offenders = []
    for rel, tree, _ in _sources():
        if rel.startswith("dunning/ledger/") or rel.startswith("dunning/db/migrations/"):
            continue
        offenders += [f"{rel}:{w}" for w in _table_writes(tree, "Reminder", "reminders")]
        offenders += [f"{rel}:{w}" for w in _reminder_attribute_writes(tree)]
    assert ledger.is_dir()
    assert not offenders, (
        "reminders are written only through dunning.ledger (plan, claim, record, reconcile, "
        "events, payments, erase); move these writes there:\n" + "\n".join(offenders)
    )


def test_the_scan_finds_a_reminder_write() -> None:
    """The scan itself: each way of writing a reminder outside the ledger is caught."""
    samples = {
        "update(Reminder).values(status='skipped')": _table_writes,
        "session.execute(insert(Reminder), rows)": _table_writes,
        "REMINDERS = Reminder.__table__\nREMINDERS.update()": _table_writes,
        "session.add(Reminder(invoice_id=1))": _table_writes,
        "conn.exec_driver_sql('UPDATE reminders SET status = 1')": _table_writes,
        "reminder.status = 'sent'": _reminder_attribute_writes,
        "row.lease_expires_at = None": _reminder_attribute_writes,
        "setattr(reminder, 'paid_at', now)": _reminder_attribute_writes,
    }
    for code, scan in samples.items():
        tree = ast.parse(code)
        found = (
            scan(tree, "Reminder", "reminders")  # type: ignore[call-arg]
            if scan is _table_writes
            else scan(tree)  # type: ignore[call-arg]
        )
        assert found, code
    assert not _table_writes(ast.parse("update(ReminderRun)"), "Reminder", "reminders")
    assert not _reminder_attribute_writes(ast.parse("invoice.status = 'paid'"))


def test_only_the_runs_module_writes_the_run_record() -> None:
    offenders = [
        f"{rel}:{w}"
        for rel, tree, _ in _sources()
        if rel not in ("dunning/runs.py",) and not rel.startswith("dunning/db/migrations/")
        for w in _table_writes(tree, "ReminderRun", "reminder_runs")
    ]
    assert not offenders, "the run record is written only by dunning.runs:\n" + "\n".join(offenders)


def test_only_the_payment_path_inserts_payments() -> None:
    """Every payment goes through ``dunning.ledger.payments.record_payments`` (imports, the
    Stripe webhook, sources, operators), which settles the invoice and the ledger."""
    offenders = []
    for rel, tree, _ in _sources():
        if rel == "dunning/ledger/payments.py" or rel.startswith("dunning/db/migrations/"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _call_name(node) in ("insert", "Payment"):
                target = ast.unparse(node.args[0]) if node.args else ""
                if _call_name(node) == "Payment" or re.search(r"\bPayment\b", target):
                    offenders.append(f"{rel}:{node.lineno}: {ast.unparse(node)[:80]}")
    assert not offenders, "payments are recorded only by record_payments:\n" + "\n".join(offenders)


def test_only_the_ledger_inserts_payment_attempts() -> None:
    """Every payment attempt is inserted by ``dunning.ledger.payments`` (``insert_attempts``
    for an import, ``record_attempt`` for a source sync or a Stripe webhook)."""
    offenders = []
    for rel, tree, _ in _sources():
        if rel == "dunning/ledger/payments.py" or rel.startswith("dunning/db/migrations/"):
            continue
        for write in _table_writes(tree, "PaymentAttempt", "payment_attempts"):
            offenders.append(f"{rel}:{write}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _call_name(node) == "insert" and node.args:
                if re.search(r"\bATTEMPTS\b", ast.unparse(node.args[0])):
                    offenders.append(f"{rel}:{node.lineno}: {ast.unparse(node)[:80]}")
    assert not offenders, (
        "payment attempts are inserted only by dunning.ledger.payments:\n" + "\n".join(offenders)
    )
    samples = [
        "session.add(PaymentAttempt(invoice_id=1))",
        "conn.execute(insert(PaymentAttempt), rows)",
        "conn.execute(PaymentAttempt.__table__.insert(), rows)",
        "conn.exec_driver_sql('INSERT INTO payment_attempts VALUES (1)')",
    ]
    for code in samples:
        assert _table_writes(ast.parse(code), "PaymentAttempt", "payment_attempts"), code


def test_the_flow_body_holds_no_sql() -> None:
    """The flow orchestrates tasks and the runs module; the SQL lives behind them."""
    for name in ("payment_reminders.py", "shards.py"):
        path = PACKAGE / "flows" / name
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        } | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        assert not [m for m in imported if m.split(".")[0] == "sqlalchemy"], name
        models = [
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "dunning.db.models"
            for alias in node.names
        ]
        assert set(models) <= {"utcnow"}, (name, models)
        sql = [
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.search(
                r"(?is)\b(select\s.+\sfrom|insert\s+into|update\s+\w+\s+set)\b", node.value
            )
        ]
        assert not sql, (name, sql)

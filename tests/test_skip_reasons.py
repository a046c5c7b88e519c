"""Every skip or defer reason the planner, the flow's plan task, the experiments, the sources
and the ledger write is a member of the one ``SkipReason`` (dunning.core.skip): no reason
string is written anywhere else."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from dunning.core.skip import DEFER_REASONS, RULES, SkipReason
from dunning.ledger.events import skip_open_reminders
from dunning.policy.model import SendWindow
from dunning.policy.window import window_state

PACKAGE = Path(__file__).resolve().parents[1] / "dunning"
#: The modules that decide or write why a reminder is not (yet) sent.
SCANNED = [
    "policy",
    "ledger",
    "experiments",
    "sources",
    "tasks",
    "flows",
    "escalation.py",
    "delivery.py",
    "privacy.py",
]
#: Reason literals written with a status that is not skipped/deferred (an operator's
#: resolution, a provider's settlement, a stale claim's reconciliation: free text beside a
#: sent or unknown status).
NOT_SKIP = {
    "resolved as sent by an operator",
    "process stopped after claiming; the provider cannot be asked whether it sent the message "
    "— check the provider's log",
    "reconciled with the provider after a crash",
    "settled by the provider's event (the send had timed out or crashed)",
}


def _is_reason(node: ast.AST) -> bool:
    """``node`` names the reason: the string "reason", or an attribute ``.reason``."""
    if isinstance(node, ast.Constant) and node.value == "reason":
        return True
    if isinstance(node, ast.Attribute) and node.attr == "reason":
        return True
    if isinstance(node, ast.Tuple):
        return any(_is_reason(e) for e in node.elts)
    if isinstance(node, ast.Subscript):
        return _is_reason(node.slice)
    return False


def _literals(value: ast.AST) -> list[str]:
    """The string literals ``value`` may evaluate to (a constant, or either side of an if)."""
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return [value.value]
    if isinstance(value, ast.IfExp):
        return _literals(value.body) + _literals(value.orelse)
    return []


def written_reasons() -> list[tuple[str, int, str]]:
    """(file, line, literal) for each string literal written as a reason in ``SCANNED``:
    ``reason="..."`` keywords, ``x["reason"] = "..."``, ``x.loc[..., "reason"] = "..."``,
    ``x.reason = "..."`` and ``{"reason": "..."}``."""
    files: list[Path] = []
    for name in SCANNED:
        path = PACKAGE / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    found: list[tuple[str, int, str]] = []
    for file in files:
        rel = str(file.relative_to(PACKAGE.parent))
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            values: list[ast.AST] = []
            if isinstance(node, ast.keyword) and node.arg == "reason":
                values.append(node.value)
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Subscript | ast.Attribute) and _is_reason(t) for t in node.targets
            ):
                values.append(node.value)
            elif isinstance(node, ast.Dict):
                values += [
                    v for k, v in zip(node.keys, node.values, strict=True) if k and _is_reason(k)
                ]
            for value in values:
                found += [(rel, value.lineno, text) for text in _literals(value)]
    return found


def test_the_scan_sees_reason_writes() -> None:
    """The scan is not blind: it finds the free-text reasons the ledger writes beside a sent
    status (so a skip reason written as a literal would be found too)."""
    assert NOT_SKIP <= {text for _, _, text in written_reasons()}


def test_every_reason_literal_is_a_skip_reason() -> None:
    values = {r.value for r in SkipReason}
    stray = [
        f"{file}:{line}: {text!r}"
        for file, line, text in written_reasons()
        if text and text not in values and text not in NOT_SKIP
    ]
    assert not stray, "reasons written outside SkipReason (add them to dunning.core.skip):\n" + (
        "\n".join(stray)
    )


def test_the_ledger_refuses_an_unknown_skip_reason() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as conn, pytest.raises(ValueError, match="not a valid SkipReason"):
        skip_open_reminders(conn, reason="because", invoice_ids=[1])  # type: ignore[arg-type]


def test_rules_and_deferrals_are_members() -> None:
    assert {rule.reason for rule in RULES} | DEFER_REASONS <= set(SkipReason)
    # The stored value of an erased customer's reminders keeps its space (nothing stored moves).
    assert SkipReason.CUSTOMER_ERASED == "customer erased"
    assert SkipReason.HOLDOUT == "holdout"


windows = st.builds(
    SendWindow,
    start_minute=st.integers(0, 12 * 60),
    end_minute=st.integers(12 * 60 + 1, 1440),
    weekdays=st.frozensets(st.integers(0, 6), min_size=1),
    skip_holidays=st.booleans(),
    blackout=st.lists(
        st.integers(-3, 10).map(lambda d: date(2026, 12, 24) + timedelta(days=d)), max_size=2
    ).map(lambda days: tuple((d, d) for d in days)),
)


@settings(max_examples=120, deadline=None)
@given(
    window=windows,
    hours=st.integers(0, 24 * 14),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney"]),
    country=st.sampled_from(["US", "DE", "AU", "GB"]),
)
def test_every_window_reason_is_a_skip_reason(
    window: SendWindow, hours: int, zone: str, country: str
) -> None:
    """The send window's deferral reasons (blackout, holiday, weekend, outside the hours)
    are SkipReason members, whatever the window and the moment."""
    as_of = datetime(2026, 12, 20, tzinfo=UTC) + timedelta(hours=hours)
    reason, _ = window_state(as_of, zone, country, window)
    assert reason == "" or SkipReason(reason) in DEFER_REASONS

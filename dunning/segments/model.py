"""Segmentation as data: the features rules may name, conditions, rules, and what segmenting
needs from a policy.

Segments depend on nothing in :mod:`dunning.policy`: the policy holds these rules (its
``rules`` are :class:`SegmentRule`) and satisfies :class:`SegmentPolicy`, and the loader
checks rule features against :data:`FEATURE_NAMES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

#: Features segment rules may use (see dunning/policy/default_policy.toml).
FEATURE_NAMES = (
    "on_time_share",
    "mean_days_late",
    "p90_days_late",
    "failed_attempts_90d",
    "open_invoices",
    "oldest_open_days_overdue",
    "tenure_days",
    "invoice_count",
    "settled_count",
    "large_overdue",
)


@dataclass(frozen=True)
class Condition:
    """``feature`` (one of FEATURE_NAMES) compared with ``value`` by ``op`` (>=, <=, ==)."""

    feature: str
    op: str
    value: float | bool


@dataclass(frozen=True)
class SegmentRule:
    """A segment and the conditions (all must hold) that put a customer in it."""

    segment: str
    conditions: tuple[Condition, ...]
    doc: str = ""


class SegmentPolicy(Protocol):
    """What segmenting reads from a policy (``dunning.policy.Policy`` is one)."""

    @property
    def rules(self) -> tuple[SegmentRule, ...]:
        """The rules in order; the first whose conditions all hold wins."""
        ...

    @property
    def fallback_segment(self) -> str:
        """The segment of a customer no rule matches."""
        ...

    @property
    def segments(self) -> tuple[str, ...]:
        """Every segment name the rules can produce, in rule order, fallback last."""
        ...

    @property
    def large_overdue_balance(self) -> Decimal:
        """The overdue balance (major units) that makes a customer ``large_overdue``."""
        ...

    @property
    def large_overdue_by_currency(self) -> Mapping[str, Decimal]:
        """Per currency code, that mark where it differs from ``large_overdue_balance``."""
        ...

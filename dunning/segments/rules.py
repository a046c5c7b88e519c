"""Segments from the policy's rules: the first rule whose conditions all hold wins."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dunning.segments.features import aligned, invoice_history
from dunning.segments.model import Condition, SegmentPolicy

if TYPE_CHECKING:
    from dunning.core.portfolio import Portfolio


def _holds(features: pd.DataFrame, cond: Condition) -> np.ndarray:
    """Per customer, whether ``cond`` holds (a missing feature value never does)."""
    values = features[cond.feature]
    if cond.op == ">=":
        return (values >= cond.value).to_numpy(bool)
    if cond.op == "<=":
        return (values <= cond.value).to_numpy(bool)
    return (values == cond.value).to_numpy(bool)


def assign_segments(features: pd.DataFrame, policy: SegmentPolicy) -> pd.Series:
    """The segment of every customer in ``features`` (same index), as a categorical."""
    names = list(policy.segments)
    codes = np.full(len(features), names.index(policy.fallback_segment), dtype=np.int16)
    decided = np.zeros(len(features), dtype=bool)
    for rule in policy.rules:
        match = ~decided
        for cond in rule.conditions:
            match &= _holds(features, cond)
        codes[match] = names.index(rule.segment)
        decided |= match
    return pd.Series(
        pd.Categorical.from_codes(codes, categories=pd.Index(names)),
        index=features.index,
        name="segment",
    )


def segment_customers(features: pd.DataFrame, policy: SegmentPolicy) -> pd.DataFrame:
    """``features`` with a ``segment`` column added."""
    out = features.copy()
    out["segment"] = assign_segments(features, policy)
    return out


def segment_summary(portfolio: Portfolio, segments: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Per (segment, currency): customers, open invoices and open balance in minor units.

    Balances are summed per currency only; a segment without open invoices has one row with
    an empty currency.
    """
    seg = segments["segment"]
    customers = seg.value_counts().rename("customers")
    hist = invoice_history(portfolio, as_of)
    open_rows = hist.loc[hist["is_open"]]
    open_rows = open_rows.assign(segment=aligned(open_rows["customer_id"], seg).to_numpy())
    per_cur = (
        open_rows.groupby(["segment", "currency"], observed=True)
        .agg(open_invoices=("balance_minor", "size"), open_balance_minor=("balance_minor", "sum"))
        .reset_index()
    )
    names = pd.DataFrame({"segment": list(seg.cat.categories)})
    out = names.merge(per_cur.astype({"segment": str, "currency": str}), on="segment", how="left")
    out["customers"] = out["segment"].map(customers).fillna(0).astype("int64")
    out["currency"] = out["currency"].fillna("")
    out["open_invoices"] = out["open_invoices"].fillna(0).astype("int64")
    out["open_balance_minor"] = out["open_balance_minor"].fillna(0).astype("int64")
    return out[["segment", "customers", "currency", "open_invoices", "open_balance_minor"]]

"""Per-customer payment-history features, computed with vectorised pandas.

Features use the as-of instant's UTC date: they describe history in whole days, where the
customer's local date (which the ladder uses) would change nothing that matters.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dunning.money import exponent
from dunning.segments.model import FEATURE_NAMES, SegmentPolicy

if TYPE_CHECKING:
    from dunning.core.portfolio import Portfolio

#: The invoice statuses whose balance is still owed.
OPEN_STATUSES = ("open", "disputed")


def as_of_day(as_of: datetime) -> pd.Timestamp:
    """The UTC calendar day of ``as_of`` as a naive midnight Timestamp."""
    return pd.Timestamp(as_of).tz_convert("UTC").tz_localize(None).normalize()


def minor_threshold(currencies: pd.Series, major: dict[str, object], default: object) -> pd.Series:
    """Per row, the amount of ``major`` (per currency, else ``default``) in minor units (int64)."""
    from decimal import Decimal

    codes = pd.Series(pd.unique(currencies.astype(str)))
    lookup = {
        c: int(Decimal(str(major.get(c, default))).scaleb(exponent(c)).to_integral_value())
        for c in codes
    }
    return currencies.astype(str).map(lookup).astype("int64")


def aligned(keys: pd.Series, values: pd.Series) -> pd.Series:
    """``values`` looked up by ``keys`` (index of ``keys`` kept; missing keys give NA)."""
    return values.reindex(keys.to_numpy()).set_axis(keys.index)


def invoice_history(portfolio: Portfolio, as_of: datetime) -> pd.DataFrame:
    """Invoices (void excluded) with balance_minor, is_open, days_late (NaN: not yet judged)
    and cpos, the position of the invoice's customer in ``portfolio.customers``."""
    inv = portfolio.invoices
    inv = inv.loc[inv["status"].astype(str).to_numpy() != "void"]
    cpos = portfolio.customer_positions(inv["customer_id"])
    inv, cpos = inv.loc[cpos >= 0], cpos[cpos >= 0]
    balance = inv["amount_minor"].to_numpy(np.int64) - inv["paid_minor"].to_numpy(np.int64)
    is_open = np.isin(inv["status"].astype(str).to_numpy(), OPEN_STATUSES) & (balance > 0)
    due = inv["due_on"].to_numpy("datetime64[D]")
    pay = portfolio.payments
    last_paid = (
        pd.Series(_utc_ns(pay["paid_at"]), index=pay["invoice_id"].to_numpy())
        .groupby(level=0)
        .max()
    )
    paid_ns = last_paid.reindex(inv["invoice_id"].to_numpy()).to_numpy()
    paid_day = paid_ns.astype("datetime64[ns]").astype("datetime64[D]")
    # A settled invoice without a payment row (paid elsewhere) counts as paid on time.
    paid_day = np.where(np.isnan(paid_ns), due, paid_day)
    today = np.datetime64(as_of_day(as_of).date(), "D")
    late_settled = np.maximum((paid_day - due).astype(np.int64), 0)
    late_open = (today - due).astype(np.int64)
    days_late = np.where(
        ~is_open, late_settled.astype(float), np.where(late_open > 0, late_open, np.nan)
    )
    return pd.DataFrame(
        {
            "customer_id": inv["customer_id"].to_numpy(),
            "cpos": cpos,
            "currency": inv["currency"].to_numpy(),
            "balance_minor": balance,
            "is_open": is_open,
            "overdue_days": np.where(is_open, late_open, np.iinfo(np.int64).min),
            "days_late": days_late,
            "issued_on": inv["issued_on"].to_numpy("datetime64[D]"),
        }
    )


def _utc_ns(instants: pd.Series) -> np.ndarray:
    """Instants as float nanoseconds since the epoch (NaN when missing), for fast grouping."""
    ns = pd.to_datetime(instants, utc=True).to_numpy("datetime64[ns]")
    return np.where(np.isnat(ns), np.nan, ns.view(np.int64).astype(float))


def group_quantile(groups: np.ndarray, values: np.ndarray, size: int, q: float) -> np.ndarray:
    """Per group 0..size-1, the ``q`` quantile of ``values`` (linear, as pandas; NaN if empty)."""
    keep = ~np.isnan(values)
    groups, values = groups[keep], values[keep]
    order = np.lexsort((values, groups))
    groups, values = groups[order], values[order]
    counts = np.bincount(groups, minlength=size)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pos = (np.maximum(counts, 1) - 1) * q
    lo, frac = np.floor(pos).astype(np.int64), pos - np.floor(pos)
    hi = np.minimum(lo + 1, np.maximum(counts - 1, 0))
    if not len(values):
        return np.full(size, np.nan)
    last = len(values) - 1
    low, high = values[np.minimum(starts + lo, last)], values[np.minimum(starts + hi, last)]
    result = low + frac * (high - low)
    return np.where(counts > 0, result, np.nan)


def compute_features(portfolio: Portfolio, as_of: datetime, policy: SegmentPolicy) -> pd.DataFrame:
    """One row per customer (index customer_id) with every feature in FEATURE_NAMES."""
    hist = invoice_history(portfolio, as_of)
    size = len(portfolio.customers)
    today = np.datetime64(as_of_day(as_of).date(), "D")
    cpos, late = hist["cpos"].to_numpy(), hist["days_late"].to_numpy()
    judged = ~np.isnan(late)
    settled = np.bincount(cpos[judged], minlength=size)
    on_time = np.bincount(cpos[judged & (late <= 0)], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_late = np.bincount(cpos[judged], weights=late[judged], minlength=size) / settled
        share = on_time / settled
    first_issued = pd.Series(hist["issued_on"].to_numpy()).groupby(cpos).min().reindex(range(size))
    is_open = hist["is_open"].to_numpy()
    oldest = pd.Series(hist["overdue_days"].to_numpy()[is_open]).groupby(cpos[is_open]).max()
    feats = pd.DataFrame(
        {
            "on_time_share": share,
            "mean_days_late": mean_late,
            "p90_days_late": group_quantile(cpos, late, size, 0.9),
            "failed_attempts_90d": _failed_attempts(portfolio, as_of, size),
            "open_invoices": np.bincount(cpos[is_open], minlength=size),
            "oldest_open_days_overdue": oldest.reindex(range(size))
            .fillna(0)
            .clip(lower=0)
            .astype(np.int64)
            .to_numpy(),
            "tenure_days": (today - first_issued.to_numpy("datetime64[D]")).astype(
                "timedelta64[D]"
            ),
            "invoice_count": np.bincount(cpos, minlength=size),
            "settled_count": settled,
            "large_overdue": _large_overdue(hist, policy, size),
        },
        index=pd.Index(portfolio.customers["customer_id"].astype(str), name="customer_id"),
    )
    feats["tenure_days"] = feats["tenure_days"].dt.days.fillna(0).astype(np.int64)
    return feats[list(FEATURE_NAMES)]


def _large_overdue(hist: pd.DataFrame, policy: SegmentPolicy, size: int) -> np.ndarray:
    """Per customer, whether the overdue balance in some one currency reaches the policy's mark."""
    overdue = hist.loc[hist["is_open"].to_numpy() & (hist["overdue_days"].to_numpy() > 0)]
    per_cur = (
        overdue.groupby([overdue["cpos"], overdue["currency"].astype(str)])["balance_minor"]
        .sum()
        .reset_index()
    )
    threshold = minor_threshold(
        per_cur["currency"], dict(policy.large_overdue_by_currency), policy.large_overdue_balance
    )
    large = np.zeros(size, dtype=bool)
    large[
        per_cur["cpos"].to_numpy()[per_cur["balance_minor"].to_numpy() >= threshold.to_numpy()]
    ] = True
    return large


def _failed_attempts(portfolio: Portfolio, as_of: datetime, size: int) -> np.ndarray:
    """Per customer, failed payment attempts in the 90 days up to ``as_of``."""
    att = portfolio.attempts
    at = _utc_ns(att["attempted_at"])
    now = float(pd.Timestamp(as_of).value)
    recent = att.loc[
        (att["outcome"].astype(str).to_numpy() == "failed")
        & (at >= now - 90 * 86400 * 1e9)
        & (at <= now)
    ]
    inv = portfolio.invoices
    owner = portfolio.customer_positions(inv["customer_id"])
    where = pd.Index(inv["invoice_id"]).get_indexer(pd.Index(recent["invoice_id"]))
    cpos = owner[where[where >= 0]]
    return np.bincount(cpos[cpos >= 0], minlength=size)

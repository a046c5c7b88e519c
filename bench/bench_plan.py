"""Benchmark: segment + plan over a synthetic in-memory portfolio (not a timed test).

    .venv/bin/python bench/bench_plan.py --invoices 1000000 --customers 200000

Prints the figures and writes them as JSON to bench/results/plan.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dunning.core.portfolio import Portfolio  # noqa: E402
from dunning.policy import load_policy, plan, segment_frame  # noqa: E402

ZONES = [
    ("Europe/Berlin", "DE", "de_DE"),
    ("America/New_York", "US", "en_US"),
    ("Europe/London", "GB", "en_GB"),
    ("Asia/Tokyo", "JP", "ja_JP"),
    ("Europe/Paris", "FR", "fr_FR"),
    ("America/Los_Angeles", "US", "en_US"),
    ("Australia/Sydney", "AU", "en_AU"),
    ("America/Sao_Paulo", "BR", "pt_BR"),
]
CURRENCIES = ["EUR", "USD", "GBP", "JPY", "EUR", "USD", "AUD", "BRL"]


def synthetic_portfolio(
    n_invoices: int, n_customers: int, as_of: datetime, seed: int = 7
) -> Portfolio:
    """A random portfolio: 2 years of invoice history, ~15% open, payments, attempts, ledger."""
    rng = np.random.default_rng(seed)
    zone = rng.integers(0, len(ZONES), n_customers)

    def by_zone(field: int) -> Any:
        return pd.Categorical([z[field] for z in ZONES])[zone]

    customers = pd.DataFrame(
        {
            "customer_id": pd.Series([f"C{i:07d}" for i in range(n_customers)]),
            "country": by_zone(1),
            "timezone": by_zone(0),
            "locale": by_zone(2),
            "has_email": rng.random(n_customers) > 0.02,
            "has_phone": rng.random(n_customers) > 0.2,
            "sms_consent": rng.random(n_customers) > 0.4,
            "email_opt_out": rng.random(n_customers) < 0.01,
            "sms_opt_out": rng.random(n_customers) < 0.05,
            "paused_until": pd.NaT,
        }
    )
    customers["paused_until"] = customers["paused_until"].astype("datetime64[ns]")
    owner = rng.integers(0, n_customers, n_invoices)
    today = np.datetime64(as_of.date(), "D")
    due = today - rng.integers(-30, 730, n_invoices).astype("timedelta64[D]")
    is_open = (due > today - 60) & (rng.random(n_invoices) < 0.6)
    amount = rng.integers(1000, 500000, n_invoices)
    paid = np.where(is_open, np.where(rng.random(n_invoices) < 0.1, amount // 2, 0), amount)
    status = np.where(is_open, np.where(rng.random(n_invoices) < 0.01, 1, 0), 2)
    ids = np.arange(1, n_invoices + 1)
    invoices = pd.DataFrame(
        {
            "invoice_id": ids,
            "invoice_number": pd.Series(ids).map("INV-{:08d}".format),
            "customer_id": customers["customer_id"].to_numpy()[owner],
            "currency": pd.Categorical(CURRENCIES)[zone[owner]],
            "amount_minor": amount.astype("int64"),
            "paid_minor": paid.astype("int64"),
            "issued_on": (due - 30).astype("datetime64[ns]"),
            "due_on": due.astype("datetime64[ns]"),
            "status": pd.Categorical.from_codes(
                status, categories=pd.Index(["open", "disputed", "paid"])
            ),
            "promise_to_pay_on": pd.Series(
                np.where(rng.random(n_invoices) < 0.01, today + 3, np.datetime64("NaT")),
                dtype="datetime64[ns]",
            ),
            "paused_until": pd.Series(np.full(n_invoices, np.datetime64("NaT"), "datetime64[ns]")),
        }
    )
    paid_ids = ids[~is_open]
    late = rng.choice([0, 0, 0, 1, 3, 8, 20], len(paid_ids))
    payments = pd.DataFrame(
        {
            "invoice_id": paid_ids,
            "amount_minor": amount[~is_open],
            "paid_at": pd.to_datetime(due[~is_open] + late.astype("timedelta64[D]")).tz_localize(
                "UTC"
            )
            + pd.Timedelta(hours=12),
        }
    )
    att_ids = rng.choice(ids, n_invoices // 50)
    attempts = pd.DataFrame(
        {
            "invoice_id": att_ids,
            "attempted_at": pd.Timestamp(as_of)
            - pd.to_timedelta(rng.integers(1, 200 * 24, len(att_ids)), "h"),
            "outcome": pd.Categorical.from_codes(
                rng.integers(0, 2, len(att_ids)), pd.Index(["failed", "succeeded"])
            ),
            "failure_code": pd.Categorical.from_codes(
                np.zeros(len(att_ids), int), pd.Index(["card_declined"])
            ),
        }
    )
    open_ids = ids[is_open & (due < today)]
    sent_ids = (
        rng.choice(open_ids, len(open_ids) // 2, replace=False) if len(open_ids) else open_ids
    )
    ledger = pd.DataFrame(
        {
            "invoice_id": sent_ids,
            "stage": pd.Categorical.from_codes(
                np.zeros(len(sent_ids), int), pd.Index(["overdue_1"])
            ),
            "channel": pd.Categorical.from_codes(
                np.zeros(len(sent_ids), int), pd.Index(["email", "sms"])
            ),
            "status": pd.Categorical.from_codes(np.zeros(len(sent_ids), int), pd.Index(["sent"])),
            "sent_at": pd.Timestamp(as_of) - pd.Timedelta(days=2),
            "claimed_at": pd.Timestamp(as_of) - pd.Timedelta(days=2),
            "planned_at": pd.Timestamp(as_of) - pd.Timedelta(days=2),
            "planned_for": pd.Timestamp(as_of) - pd.Timedelta(days=2),
        }
    )
    return Portfolio(customers, invoices, payments, attempts, ledger)


def _cpu_s() -> float:
    """CPU seconds used by this process so far (user + system): robust to a busy machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Build, segment and plan; print and save the timings and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "plan.json")
    args = parser.parse_args()
    as_of = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    policy = load_policy()
    t0 = time.perf_counter()
    portfolio = synthetic_portfolio(args.invoices, args.customers, as_of)
    rss_built = _peak_rss_mb()
    t1, c1 = time.perf_counter(), _cpu_s()
    segments = segment_frame(portfolio, as_of, policy)
    t2 = time.perf_counter()
    lines = plan(portfolio, as_of, policy, segments=segments)
    t3, c3 = time.perf_counter(), _cpu_s()
    result = {
        "invoices": args.invoices,
        "customers": args.customers,
        "as_of": as_of.isoformat(),
        "build_s": round(t1 - t0, 2),
        "segment_s": round(t2 - t1, 2),
        "plan_s": round(t3 - t2, 2),
        "segment_plus_plan_s": round(t3 - t1, 2),
        "segment_plus_plan_cpu_s": round(c3 - c1, 2),
        "peak_rss_mb_after_build": round(rss_built, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "plan_lines": len(lines),
        "actions": {str(k): int(v) for k, v in lines["action"].value_counts().items()},
        "segments": {str(k): int(v) for k, v in segments["segment"].value_counts().items()},
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

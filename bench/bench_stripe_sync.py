"""Stripe source sync benchmark: N invoices in the fake Stripe at a given latency.

Measures a full sync (records/s, requests made, wall time) and then an incremental sync with
nothing changed (which must cost one request: the Events API since the cursor), then one with
a single invoice paid in the fake. Runs against SQLite by default, or ``--db-url``.

    python -m bench.bench_stripe_sync --invoices 10000 --latency-ms 20
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from dunning import db
from dunning.devtools.fakes.stripe import StripeFakeState
from dunning.devtools.fakes.stripe_app import StripeFakeConfig, run_stripe_fake
from dunning.sources.config import SourceConfig
from dunning.sources.stripe import StripeSource
from dunning.sources.sync import sync_source

COUNTRIES = (("US", "en"), ("DE", "de"), ("FR", "fr"), ("JP", "ja"), ("GB", "en"))
CURRENCIES = {"US": "usd", "DE": "eur", "FR": "eur", "JP": "jpy", "GB": "gbp"}
DUE = 1_790_000_000  # 2026-09-21


def seed(state: StripeFakeState, invoices: int, customers: int) -> list[str]:
    """The invoice ids after filling ``state`` with customers and open invoices (1 in 10 paid)."""
    ids = []
    custs = []
    for i in range(customers):
        country, lang = COUNTRIES[i % len(COUNTRIES)]
        custs.append(
            (
                state.add_customer(
                    name=f"Customer {i}",
                    email=f"c{i}@example.com",
                    country=country,
                    preferred_locales=[lang],
                )["id"],
                CURRENCIES[country],
            )
        )
    for i in range(invoices):
        cust, currency = custs[i % customers]
        status = "paid" if i % 10 == 0 else "open"
        ids.append(state.add_invoice(cust, 1_000 + i, currency, due_date=DUE, status=status)["id"])
    return ids


def measure(invoices: int, customers: int, latency_ms: float, db_url: str) -> dict[str, Any]:
    """The figures of one benchmark run."""
    db.upgrade(db_url)
    engine = db.get_engine(db_url)
    state = StripeFakeState()
    ids = seed(state, invoices, customers)
    config = StripeFakeConfig(latency_ms=latency_ms)
    with run_stripe_fake(config, state) as fake:
        os.environ.update(fake.env())
        source = StripeSource(SourceConfig("stripe", "stripe"))
        out: dict[str, Any] = {
            "invoices": invoices,
            "customers": customers,
            "latency_ms": latency_ms,
            "backend": engine.dialect.name,
        }
        for label in ("full", "quiet", "one_paid"):
            if label == "one_paid":
                fake.state.act(ids[1], "pay")
            before = fake.state.requests
            started = time.perf_counter()
            report = sync_source(engine, source)
            wall = time.perf_counter() - started
            records = sum(
                sum(c.get(k, 0) for k in ("inserted", "updated", "unchanged", "quarantined"))
                for c in report.counts.values()
            )
            out[label] = {
                "wall_s": round(wall, 3),
                "records": records,
                "records_per_s": round(records / wall, 1) if wall else None,
                "requests": fake.state.requests - before,
                "inserted": report.total("inserted"),
                "updated": report.total("updated"),
                "quarantined": report.total("quarantined"),
            }
    engine.dispose()
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print (or write) its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--db-url", default="")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        result = measure(args.invoices, args.customers, args.latency_ms, url)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

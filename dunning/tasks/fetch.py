"""Fetch: load the portfolio (customers, open invoices, history, ledger) as DataFrames."""

from __future__ import annotations

from prefect import task

from dunning.core.portfolio import Portfolio
from dunning.db import check_ready, get_engine
from dunning.portfolio import load_portfolio


@task(name="fetch-portfolio", description="Load invoices, customers, history and the ledger.")
def fetch_portfolio(
    invoice_numbers: list[str] | None = None, shard: tuple[int, int] | None = None
) -> Portfolio:
    """The portfolio to plan over (optionally only some invoices, or one shard's customers:
    ``shard`` = (shards, k))."""
    engine = get_engine()
    check_ready(engine)
    return load_portfolio(engine, invoice_numbers=invoice_numbers, shard=shard)

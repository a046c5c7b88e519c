"""The reference flow written the way the tutorials do it: one task per reminder via ``.map``.

Same fetch, plan, ledger writes, templates and SDK calls as ``payment_reminders`` (it maps
the very same ``deliver`` task, each over a batch of one reminder), on the default task
runner. Only the fan-out differs, which is what the benchmark compares.
"""

from __future__ import annotations

import datetime as dt
import uuid

from prefect import flow, unmapped
from prefect.futures import wait
from prefect.runtime import flow_run

from dunning.tasks.deliver import deliver, record_plan
from dunning.tasks.fetch import fetch_portfolio
from dunning.tasks.plan import plan_reminders

#: Task runs this flow creates besides one per reminder: fetch, plan, record-plan.
FIXED_TASKS = 3


@flow(name="payment-reminders-naive", log_prints=False)
def naive_reminders(as_of: dt.datetime, max_messages: int | None = None) -> int:
    """How many reminders were handed to one ``deliver`` task each (the first
    ``max_messages`` planned ones when given; the rest stay planned)."""
    run_id = str(flow_run.id or uuid.uuid4())
    portfolio = fetch_portfolio()
    lines, policy = plan_reminders(portfolio, as_of)
    groups, _ = record_plan(lines[lines["action"] == "send"], run_id, as_of)
    ids = [i for group in groups for i in group][:max_messages]
    futures = deliver.map(
        [[i] for i in ids],
        unmapped(f"run-{run_id}"),
        unmapped(policy.min_balance_for),
        unmapped(as_of),
    )
    wait(list(futures))
    return len(ids)

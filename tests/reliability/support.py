"""Shared parts of the reliability tests: a small portfolio, `dunning run` as a subprocess,
and the checks "zero duplicates at the provider" and "no reminder lost without a reason"."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from dunning.db.models import Reminder
from dunning.devtools.fakes import RunningFakes
from tests.factories import add_customer, add_invoice

# Tuesday 24 Nov 2026, 15:00 UTC = 10:00 in New York: inside the default send window.
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
DUNNING = str(Path(sys.executable).parent / "dunning")
#: The shortest lease the settings allow: a killed run's claims expire this fast.
LEASE_S = 5
#: Where every ledger row may end after the runs and the reconciliation.
SETTLED = {"sent", "failed_permanent", "planned", "skipped", "unknown"}


def portfolio(engine: Engine, customers: int) -> int:
    """How many reminders a run will plan: one overdue invoice per customer, email and SMS each."""
    for i in range(customers):
        cid = f"R{i:03d}"
        add_customer(engine, cid, email=f"r{i:03d}@example.com", phone=f"+1415555{i:04d}")
        add_invoice(engine, f"INV-R{i:03d}", cid, due_on=dt.date(2026, 11, 10))
    return 2 * customers


def run_env(db_url: str, fakes_env: dict[str, str], home: Path, **extra: str) -> dict[str, str]:
    """The environment of a `dunning run` subprocess: the test's database, fakes and Prefect API."""
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUNNING_", "PREFECT_"))}
    env.update(fakes_env)
    env.update(
        DUNNING_DATABASE_URL=db_url,
        DUNNING_HOME=str(home),
        DUNNING_LEASE_SECONDS=str(LEASE_S),
        DUNNING_PROVIDER_TIMEOUT_SECONDS="2",
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        PREFECT_LOGGING_LEVEL="WARNING",
        # Why: the shared test server answers fast; a subprocess must not wait on it in vain.
        PREFECT_API_REQUEST_TIMEOUT="60",
    )
    env.update(extra)
    return env


def dunning_run(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The finished `dunning run --as-of AS_OF --json` subprocess (killed ones included)."""
    return subprocess.run(
        [DUNNING, "run", "--as-of", AS_OF.isoformat(), "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_run(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """A `dunning run --as-of AS_OF --json` subprocess, started and not waited for."""
    return subprocess.Popen(
        [DUNNING, "run", "--as-of", AS_OF.isoformat(), "--json", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass(frozen=True)
class Row:
    """One ledger row as the checks need it."""

    id: int
    channel: str
    status: str
    reason: str | None
    error_code: str | None
    provider_message_id: str | None
    lease_expires_at: dt.datetime | None
    to_address: str | None
    claimed_by: str | None
    message_group: int | None = None  # one message per customer: the lead's id


def ledger_rows(engine: Engine) -> list[Row]:
    """Every row of the reminders ledger."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Reminder.id,
                Reminder.channel,
                Reminder.status,
                Reminder.reason,
                Reminder.error_code,
                Reminder.provider_message_id,
                Reminder.lease_expires_at,
                Reminder.to_address,
                Reminder.claimed_by,
                Reminder.message_group,
            ).order_by(Reminder.id)
        ).all()
    return [Row(*r) for r in rows]


def statuses(rows: list[Row]) -> dict[str, int]:
    """How many rows are in each status."""
    return dict(Counter(r.status for r in rows))


def well_formed(rows: list[Row]) -> list[str]:
    """Rows in an invalid state (nothing half-written): a claim without a lease, a sent row
    without the provider's id, an end state that needs a reason without one."""
    problems = []
    for r in rows:
        if r.status == "claimed" and r.lease_expires_at is None:
            problems.append(f"reminder {r.id}: claimed without a lease")
        if r.status == "sent" and not r.provider_message_id:
            problems.append(f"reminder {r.id}: sent without a provider message id")
        if r.status in ("failed_permanent", "skipped", "unknown") and not r.reason:
            problems.append(f"reminder {r.id}: {r.status} without a reason")
    return problems


def lost(rows: list[Row]) -> list[str]:
    """Rows not settled after reconciliation: anything still claimed or in no known end state."""
    return [f"reminder {r.id}: {r.status}" for r in rows if r.status not in SETTLED]


def provider_keys(fakes: RunningFakes) -> Counter[str]:
    """How often each message was accepted: SendGrid by reminder id, Twilio by recipient+body."""
    return Counter(
        f"sendgrid:{m.reminder_id}" if m.reminder_id else f"{m.provider}:{m.to}:{m.body}"
        for m in fakes.received()
    )


def duplicates(fakes: RunningFakes) -> dict[str, int]:
    """Messages the fakes accepted more than once (must stay empty)."""
    return {k: n for k, n in provider_keys(fakes).items() if n > 1}


def sent_matches_provider(rows: list[Row], fakes: RunningFakes) -> list[str]:
    """Mismatches between the ledger and the provider: a `sent` row whose message id the
    provider never issued, or an accepted message that no sent/unknown row accounts for."""
    # SendGrid's per-recipient id is the request's X-Message-Id plus a ".filter…" suffix, and
    # one request may carry several recipients: compare by that request id.
    accepted = {m.message_id.split(".")[0] for m in fakes.received()}
    sent = [r for r in rows if r.status == "sent"]
    problems = [
        f"reminder {r.id}: sent as {r.provider_message_id}, unknown to the provider"
        for r in sent
        if str(r.provider_message_id).split(".")[0] not in accepted
    ]
    recorded = {str(r.provider_message_id).split(".")[0] for r in sent}
    open_ = sum(1 for r in rows if r.status == "unknown")
    extra = accepted - recorded
    if len(extra) > open_:
        problems.append(f"{len(extra)} accepted request(s) but only {open_} unknown row(s)")
    return problems


def summary(label: str, **figures: Any) -> None:
    """Print one line of figures for the lead's report (visible with pytest -s)."""
    print(f"[reliability] {label}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))

"""A simulated portfolio for A/B tests (tests and bench only, never the product).

Customers each owe one invoice; the overdue_1 reminder is the experiment's stage, with a
control arm A and a variant arm B. After each overdue_1 reminder the customer pays within 7
days with the probability of their arm (``p_control``, ``p_control + lift``), else later.

- :func:`simulate_db`: the real path over a database: the planner, the experiments'
  assignment, the ledger, delivery through the outbox channel and the payments, one run per
  simulated day; then :func:`dunning.experiments.service.experiment_report`.
- :func:`simulate_plan`: the planner and the assignment over an in-memory portfolio at one
  instant, outcomes drawn per reminder, then the same analysis (fast: many repetitions).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from decimal import Decimal
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from pydantic import SecretStr
from sqlalchemy import Engine, select, update

from dunning import ledger
from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage, SendResult
from dunning.core.portfolio import build_portfolio
from dunning.db import session_scope
from dunning.db.models import Customer, Invoice, Payment, Reminder
from dunning.delivery import deliver_batch
from dunning.experiments.analysis import analyse
from dunning.experiments.assign import apply_experiments
from dunning.experiments.service import experiment_report
from dunning.experiments.store import ROW_COLUMNS
from dunning.ledger.plan import record_holdouts
from dunning.policy import DEFAULT_POLICY_PATH, parse_policy
from dunning.policy.model import Policy
from dunning.policy.planner import plan
from dunning.portfolio import load_portfolio
from dunning.render import compose

START = dt.date(2026, 11, 2)  # a Monday
STAGE = "overdue_1"


class AcceptAll:
    """A provider that accepts every message at once (the outbox without writing MIME files:
    the simulation measures the experiment, not the files)."""

    provider = "sim"

    def __init__(self, name: str) -> None:
        self.name = name
        self.templates: list[str] = []

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        self.templates += [m.template_key for m in messages]
        return [
            SendResult(m.reminder_id, True, self.provider, f"sim-{m.reminder_id}") for m in messages
        ]


def sim_policy(mde: float = 0.20, baseline: float = 0.30, metric: str = "collected_7d") -> Policy:
    """The default policy with experiment ``sim`` on overdue_1: A (control) and B (variant
    B), half each, over November and December 2026."""
    data = tomllib.loads(DEFAULT_POLICY_PATH.read_text())
    data["experiments"] = [
        {
            "name": "sim",
            "stage": STAGE,
            "start": "2026-11-01",
            "end": "2026-12-31",
            "metric": metric,
            "mde": mde,
            "baseline": baseline,
            "arms": [{"name": "A", "share": 0.5}, {"name": "B", "share": 0.5, "variant": "B"}],
        }
    ]
    return parse_policy(data, "sim.toml")


def _amount(rng: np.random.Generator) -> Decimal:
    return Decimal(int(rng.integers(5000, 50000))) / 100


def _payment_delay(rng: np.random.Generator, pays_in_window: bool) -> dt.timedelta:
    days = rng.uniform(0.2, 6.5) if pays_in_window else rng.uniform(8.0, 25.0)
    return dt.timedelta(days=float(days))


def simulate_db(
    engine: Engine,
    *,
    customers: int = 300,
    p_control: float = 0.30,
    lift: float = 0.25,
    days: int = 11,
    seed: int = 0,
    policy: Policy | None = None,
) -> dict[str, Any]:
    """Seed ``customers`` (London, e-mail only) with one EUR invoice each, due on Monday
    2026-11-02, and run planner → assignment → ledger → delivery (outbox) → payments once a
    simulated day at 11:00 UTC for ``days`` days from the Sunday before (overdue_1 goes out
    on Tuesday, its 7 days have passed on the 11th day); returns the experiment's report."""
    rng = np.random.default_rng(seed)
    policy = policy or sim_policy()
    with session_scope(engine) as s:
        for i in range(customers):
            cid = f"S{i:05d}"
            s.add(
                Customer(
                    customer_id=cid,
                    name=f"Customer {i}",
                    email=f"c{i}@example.com",
                    country="GB",
                    timezone="Europe/London",
                    locale="en_GB",
                )
            )
            s.add(
                Invoice(
                    invoice_number=f"SIM-{i:05d}",
                    customer_id=cid,
                    currency="EUR",
                    amount=_amount(rng),
                    issued_on=START - dt.timedelta(days=30),
                    due_on=START,
                    status="open",
                    payment_link="https://pay.example.com/x",
                )
            )
    settings = ChannelSettings(
        unsubscribe_secret=SecretStr("sim"), unsubscribe_base_url="https://u.example/x"
    )
    channels = {c: AcceptAll(c) for c in ("email", "sms")}
    p_arm = {"A": p_control, "B": p_control + lift}
    due_payments: list[tuple[dt.datetime, int, Decimal]] = []
    as_of = dt.datetime.combine(START - dt.timedelta(days=1), dt.time(11), tzinfo=dt.UTC)
    for day in range(days):
        now = as_of + dt.timedelta(days=day)
        _pay(engine, [p for p in due_payments if p[0] <= now])
        due_payments = [p for p in due_payments if p[0] > now]
        portfolio = load_portfolio(engine)
        zones = dict.fromkeys(portfolio.customers["customer_id"].astype(str), "Europe/London")
        lines = apply_experiments(plan(portfolio, now, policy), policy.experiments, now, zones)
        sends = lines[lines["action"] == "send"]
        ids = ledger.record_plan(engine, sends, run_id=f"sim-{day}", as_of=now)
        record_holdouts(engine, lines, run_id=f"sim-{day}", as_of=now)
        deliver_batch(
            engine,
            ids,
            claimer=f"sim-{day}",
            channels=channels,
            compose=partial(compose, settings=settings),
            as_of=now,
        )
        with engine.begin() as conn:
            # The ledger stamps the wall clock; the simulation's clock is ``now``.
            conn.execute(update(Reminder).where(Reminder.id.in_(ids or [-1])).values(sent_at=now))
            sent = conn.execute(
                select(Reminder.invoice_id, Reminder.arm, Invoice.amount)
                .join(Invoice, Invoice.id == Reminder.invoice_id)
                .where(Reminder.id.in_(ids or [-1]), Reminder.stage == STAGE)
                .where(Reminder.status == "sent")
                .order_by(Reminder.id)  # the same draws on every backend
            ).all()
        for invoice_id, arm, amount in sent:
            pays = bool(rng.random() < p_arm.get(str(arm), p_control))
            due_payments.append((now + _payment_delay(rng, pays), invoice_id, amount))
    end = as_of + dt.timedelta(days=days)
    return experiment_report(engine, policy, "sim", end)


def _pay(engine: Engine, payments: list[tuple[dt.datetime, int, Decimal]]) -> None:
    if not payments:
        return
    with session_scope(engine) as s:
        for at, invoice_id, amount in payments:
            s.add(
                Payment(
                    invoice_id=invoice_id,
                    amount=amount,
                    paid_at=at,
                    external_id=f"sim-{invoice_id}",
                )
            )
        s.execute(
            update(Invoice).where(Invoice.id.in_([p[1] for p in payments])).values(status="paid")
        )


def simulate_plan(
    *,
    customers: int = 300,
    p_control: float = 0.30,
    lift: float = 0.0,
    seed: int = 0,
    policy: Policy | None = None,
) -> dict[str, Any]:
    """Plan every customer's overdue_1 reminder at one instant (planner + assignment, no
    database), draw each reminder's outcome from its arm's probability, and analyse the rows
    as of 8 days later (all matured)."""
    rng = np.random.default_rng(seed)
    policy = policy or sim_policy()
    as_of = dt.datetime(2026, 11, 10, 11, tzinfo=dt.UTC)  # Tuesday
    portfolio = build_portfolio(
        customers=[
            {
                "customer_id": f"S{seed}-{i:05d}",
                "country": "GB",
                "timezone": "Europe/London",
                "locale": "en_GB",
                "email": f"c{i}@example.com",
            }
            for i in range(customers)
        ],
        invoices=[
            {
                "invoice_id": i + 1,
                "invoice_number": f"SIM-{i:05d}",
                "customer_id": f"S{seed}-{i:05d}",
                "amount_minor": int(rng.integers(5000, 50000)),
                "currency": "EUR",
                "due_on": dt.date(2026, 11, 9),
            }
            for i in range(customers)
        ],
    )
    zones = dict.fromkeys(portfolio.customers["customer_id"].astype(str), "Europe/London")
    lines = apply_experiments(plan(portfolio, as_of, policy), policy.experiments, as_of, zones)
    sends = lines[(lines["action"] == "send") & (lines["stage"].astype(str) == STAGE)]
    sends = sends.drop_duplicates("invoice_id")
    p_arm = {"A": p_control, "B": p_control + lift}
    paid = [rng.random() < p_arm[str(a)] for a in sends["arm"]]
    rows = pd.DataFrame(
        {
            "invoice_id": sends["invoice_id"].to_numpy(),
            "customer_id": sends["customer_id"].to_numpy(),
            "stage": STAGE,
            "arm": sends["arm"].to_numpy(),
            "currency": "EUR",
            "at": pd.Timestamp(as_of),
            "matured": 1,
            "paid_7d": np.array(paid, dtype=int),
            "collected_7d": [
                Decimal(int(b)) / 100 if p else Decimal("0.00")
                for b, p in zip(sends["balance_minor"], paid, strict=True)
            ],
        }
    )[ROW_COLUMNS]
    return analyse(policy.experiments[0], rows, as_of + dt.timedelta(days=8))

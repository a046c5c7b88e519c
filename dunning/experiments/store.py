"""The database side of experiments: holdout rows, promotions, and each experiment's
reminders with their 7-day outcome (one SQL query each; pandas after that)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from dunning.core.skip import SkipReason
from dunning.db import session_scope
from dunning.db.models import ExperimentPromotion, Invoice, Payment, Reminder, utcnow
from dunning.errors import DunningError
from dunning.money import quantize
from dunning.operations.audit import Actor
from dunning.operations.audit import record as audit
from dunning.policy.experiments import WINDOW_DAYS, Experiment

#: Columns of :func:`experiment_rows`: one row per (invoice, stage) reminded in the experiment
#: (or held out), ``at`` the instant it was sent (a holdout: when the run held it out), its
#: customer's arm, and what its invoice collected within 7 days of ``at``.
ROW_COLUMNS = [
    "invoice_id",
    "customer_id",
    "stage",
    "arm",
    "currency",
    "at",
    "matured",
    "paid_7d",
    "collected_7d",
]


class ExperimentError(DunningError):
    """An experiment command cannot do what was asked (unknown name or arm, already ended)."""


def promotions(engine: Engine) -> dict[str, str]:
    """Experiment name → promoted arm, for every experiment ended by a promotion."""
    with session_scope(engine) as session:
        found = session.execute(select(ExperimentPromotion.experiment, ExperimentPromotion.arm))
        return {str(e): str(a) for e, a in found}


def promotion_rows(engine: Engine) -> list[dict[str, Any]]:
    """Every promotion as a dict (experiment, arm, stage, variant, promoted_at, actor)."""
    with session_scope(engine) as session:
        rows = session.scalars(select(ExperimentPromotion).order_by(ExperimentPromotion.id))
        return [
            {
                "experiment": p.experiment,
                "arm": p.arm,
                "stage": p.stage,
                "variant": p.variant,
                "promoted_at": p.promoted_at.isoformat(),
                "actor": p.actor,
            }
            for p in rows
        ]


def promote(engine: Engine, experiment: Experiment, arm_name: str, actor: Actor) -> dict[str, Any]:
    """End ``experiment`` and make ``arm_name`` what every reminder of its stage gets (its
    template variant becomes the default: the planner consults the promotions table), with
    an audit row (action ``experiment_promote``). Raises ExperimentError for an unknown arm,
    a holdout arm (remove the stage from the ladder instead) or an experiment already ended.
    """
    arm = experiment.arm(arm_name)
    if arm is None:
        names = ", ".join(a.name for a in experiment.arms)
        raise ExperimentError(
            f"experiment {experiment.name} has no arm {arm_name!r}; choose one of {names}"
        )
    if arm.holdout:
        raise ExperimentError(
            f"arm {arm_name} of {experiment.name} is a holdout: to send no {experiment.stage} "
            "reminder at all, remove the stage from the policy's ladder instead"
        )
    now = utcnow()
    with session_scope(engine) as session:
        done = session.scalar(
            select(ExperimentPromotion).where(ExperimentPromotion.experiment == experiment.name)
        )
        if done is not None:
            raise ExperimentError(
                f"experiment {experiment.name} already ended: arm {done.arm} was promoted at "
                f"{done.promoted_at.isoformat()}"
            )
        row = ExperimentPromotion(
            experiment=experiment.name,
            arm=arm.name,
            stage=experiment.stage,
            variant=arm.variant,
            promoted_at=now,
            actor=actor.name[:200],
        )
        session.add(row)
        audit(
            session,
            actor,
            "experiment_promote",
            f"experiment {experiment.name}",
            customer_id=None,
            invoice_id=None,
            reason=f"arm {arm.name} promoted: {arm.describe()}",
            before={"status": "running"},
            after={"status": "promoted", "arm": arm.name, "variant": arm.variant},
            at=now,
        )
    return {
        "experiment": experiment.name,
        "arm": arm.name,
        "stage": experiment.stage,
        "variant": arm.variant,
        "promoted_at": now.isoformat(),
    }


def experiment_rows(engine: Engine, experiment: Experiment, as_of: dt.datetime) -> pd.DataFrame:
    """One row per (invoice, stage) of ``experiment`` (see ROW_COLUMNS), as of ``as_of``.

    A reminder counts once whatever its channels (the earliest instant). It is ``matured``
    when 7 days have passed since ``at`` by ``as_of`` (right-censoring: only matured rows
    enter the statistics); ``paid_7d`` is 1 when a payment (refunds excluded) arrived within
    7 days after ``at``, ``collected_7d`` their sum (Decimal, the invoice's currency).
    Only rows sent (or held out) from the experiment's start to its end (UTC dates) count.
    """
    stmt = (
        select(
            Reminder.invoice_id,
            Reminder.customer_id,
            Reminder.stage,
            Reminder.arm,
            Invoice.currency,
            Reminder.sent_at,
            Reminder.planned_for,
            Reminder.status,
            Reminder.reason,
        )
        .join(Invoice, Invoice.id == Reminder.invoice_id)
        .where(Reminder.experiment == experiment.name)
    )
    with session_scope(engine) as session:
        raw = pd.DataFrame(
            session.execute(stmt).all(),
            columns=[
                "invoice_id",
                "customer_id",
                "stage",
                "arm",
                "currency",
                "sent_at",
                "planned_for",
                "status",
                "reason",
            ],
        )
    if raw.empty:
        return pd.DataFrame(columns=ROW_COLUMNS)
    holdout = (raw["status"] == "skipped") & (raw["reason"] == SkipReason.HOLDOUT.value)
    raw["at"] = pd.to_datetime(raw["sent_at"], utc=True).where(
        ~holdout, pd.to_datetime(raw["planned_for"], utc=True)
    )
    raw = raw[raw["at"].notna()]
    first = pd.Timestamp(experiment.start, tz="UTC")
    last = pd.Timestamp(experiment.end + dt.timedelta(days=1), tz="UTC")
    raw = raw[(raw["at"] >= first) & (raw["at"] < last)]
    rows = (
        raw.sort_values("at")
        .drop_duplicates(["invoice_id", "stage"])
        .reset_index(drop=True)[["invoice_id", "customer_id", "stage", "arm", "currency", "at"]]
    )
    pay = _payments(engine, sorted(int(i) for i in rows["invoice_id"].unique()))
    window = pd.Timedelta(days=WINDOW_DAYS)
    now = pd.Timestamp(as_of)
    rows["matured"] = (rows["at"] + window <= now).astype(int)
    pairs = rows.reset_index().merge(pay, on="invoice_id", how="inner")
    pairs = pairs[(pairs["paid_at"] >= pairs["at"]) & (pairs["paid_at"] <= pairs["at"] + window)]
    totals = pairs.groupby("index")["amount"].apply(lambda v: sum(v, Decimal(0)))
    rows["paid_7d"] = rows.index.isin(totals.index).astype(int)
    rows["collected_7d"] = pd.Series(
        [
            quantize(totals.get(i, Decimal(0)), str(c))
            for i, c in zip(rows.index, rows["currency"], strict=True)
        ],
        index=rows.index,
        dtype=object,
    )
    return rows[ROW_COLUMNS]


def _payments(engine: Engine, invoice_ids: list[int]) -> pd.DataFrame:
    rows: list[Any] = []
    with session_scope(engine) as session:
        for start in range(0, len(invoice_ids), 500):
            rows += session.execute(
                select(Payment.invoice_id, Payment.amount, Payment.paid_at).where(
                    Payment.invoice_id.in_(invoice_ids[start : start + 500]), Payment.amount > 0
                )
            ).all()
    frame = pd.DataFrame(rows, columns=["invoice_id", "amount", "paid_at"])
    frame["paid_at"] = pd.to_datetime(frame["paid_at"], utc=True)
    frame["amount"] = pd.Series([Decimal(a) for a in frame["amount"]], dtype=object)
    return frame

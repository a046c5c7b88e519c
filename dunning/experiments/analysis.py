"""The statistics of an experiment, over :func:`dunning.experiments.store.experiment_rows`.

Honest by construction:

- Only *matured* reminders count: those whose 7 days had passed at ``as_of``
  (right-censoring: a reminder sent yesterday has had no chance to be paid within 7 days).
- The sample size each arm needs for the experiment's minimum detectable effect (on the
  paid-within-7-days share, from its baseline, at its alpha and power) is computed from the
  design (statsmodels ``NormalIndPower``); until every arm has that many matured reminders the
  verdict is "not enough data" and no test result is shown (no peeking).
- A sample-ratio-mismatch check (chi-square goodness of fit, scipy) compares the customers in
  each arm with the design's shares and warns below p = 0.001.
- Paid share: Wilson interval per arm, the difference to the control with Newcombe's
  interval and the two-proportion z test (statsmodels). Money collected per reminder, per
  currency: a percentile bootstrap interval per arm (scipy.stats.bootstrap) and the
  difference to the control with Welch's t test and its interval (scipy.stats.ttest_ind).
- Each arm is compared with the control at alpha / (arms - 1) (Bonferroni).

Pure: pandas, numpy, scipy, statsmodels; no database, no Prefect.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)

from dunning.policy.experiments import WINDOW_DAYS, Experiment

NOT_ENOUGH_DATA = "not enough data"
NO_DIFFERENCE = "no difference"
#: Below this p-value the arms' sizes are taken to differ from the design.
SRM_P_VALUE = 0.001
PAID_TEST = "two-proportion z test (statsmodels proportions_ztest); Newcombe interval"
MONEY_TEST = "Welch t test (scipy.stats.ttest_ind, equal_var=False) and its interval"
ARM_MONEY_CI = "percentile bootstrap of the mean, 2000 resamples (scipy.stats.bootstrap)"
SRM_TEST = "chi-square goodness of fit on customers per arm (scipy.stats.chisquare)"


def comparison_alpha(experiment: Experiment) -> float:
    """The alpha of each arm-versus-control test (Bonferroni over the non-control arms)."""
    return experiment.alpha / max(len(experiment.arms) - 1, 1)


def required_sample_size(experiment: Experiment) -> dict[str, int]:
    """Matured reminders each arm needs (arm name → n) to detect the experiment's ``mde`` on
    the paid-within-7-days share from ``baseline`` with its ``power``, two-sided, at
    :func:`comparison_alpha`; arms of unequal shares keep the design's ratio (statsmodels
    ``NormalIndPower.solve_power`` with Cohen's h from ``proportion_effectsize``)."""
    effect = abs(
        float(proportion_effectsize(experiment.baseline + experiment.mde, experiment.baseline))
    )
    alpha = comparison_alpha(experiment)
    control = experiment.control
    need = {control.name: 0}
    for arm in experiment.arms[1:]:
        ratio = arm.share / control.share
        n_control = float(
            NormalIndPower().solve_power(
                effect_size=effect, alpha=alpha, power=experiment.power, ratio=ratio
            )
        )
        need[control.name] = max(need[control.name], math.ceil(n_control))
        need[arm.name] = math.ceil(n_control * ratio)
    return need


def _round(value: Any, digits: int = 4) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else round(number, digits)


def _money(value: float, currency: str) -> str:
    from dunning.money import quantize  # the ISO 4217 exponent

    return str(quantize(Decimal(repr(value)), currency))


def _bootstrap_mean(values: np.ndarray, alpha: float) -> tuple[float | None, float | None]:
    if len(values) < 2 or np.all(values == values[0]):
        return (_round(values[0]), _round(values[0])) if len(values) else (None, None)
    res = stats.bootstrap(
        (values,),
        np.mean,
        confidence_level=1 - alpha,
        n_resamples=2000,
        method="percentile",
        random_state=np.random.default_rng(0),
    )
    return _round(res.confidence_interval.low), _round(res.confidence_interval.high)


def _verdict(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return NO_DIFFERENCE
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return NO_DIFFERENCE


def srm_check(experiment: Experiment, rows: pd.DataFrame) -> dict[str, Any]:
    """Sample-ratio mismatch: customers per arm against the design's shares. ``warning`` is
    a sentence when p < 0.001 (assignment or logging is broken: distrust the results)."""
    customers = rows.drop_duplicates("customer_id")["arm"].value_counts()
    observed = [int(customers.get(a.name, 0)) for a in experiment.arms]
    total = sum(observed)
    expected = [total * a.share for a in experiment.arms]
    out: dict[str, Any] = {
        "test": SRM_TEST,
        "observed": dict(zip([a.name for a in experiment.arms], observed, strict=True)),
        "expected": {a.name: round(e, 1) for a, e in zip(experiment.arms, expected, strict=True)},
        "p_value": None,
        "warning": None,
    }
    if total == 0 or min(expected) < 5:
        return out
    p = float(stats.chisquare(observed, expected).pvalue)
    out["p_value"] = _round(p, 6)
    if p < SRM_P_VALUE:
        shares = ", ".join(
            f"{a.name} {o / total:.1%} (design {a.share:.0%})"
            for a, o in zip(experiment.arms, observed, strict=True)
        )
        out["warning"] = (
            f"sample ratio mismatch (p={p:.2g}): {shares}; the arms' sizes drifted from the "
            "design, so the results may be biased: check the assignment and the ledger"
        )
    return out


def analyse(
    experiment: Experiment, rows: pd.DataFrame, as_of: dt.datetime, status: str = "running"
) -> dict[str, Any]:
    """The report of ``experiment`` over ``rows`` (store.experiment_rows) as JSON-ready data.

    Keys: experiment, stage, metric, status, as_of, start, end, window_days, mde, baseline,
    alpha, comparison_alpha, power, required_n (arm → matured reminders needed),
    enough_data, verdict (``"not enough data"``, ``"no difference"`` or e.g.
    ``"B better than A"``), srm (see :func:`srm_check`), arms (per arm: n, matured_n,
    paid_7d, paid_share with its interval, money per currency: reminders, collected,
    per_reminder with its interval; amounts in major units as strings) and comparisons (per
    non-control arm, each against the control: the difference in paid share and in money per
    reminder per currency, with interval, test, p-value and verdict; None until
    enough_data).
    """
    alpha = comparison_alpha(experiment)
    need = required_sample_size(experiment)
    rows = rows.copy()
    rows["value"] = [float(v) for v in rows["collected_7d"]] if len(rows) else []
    matured = rows[rows["matured"] == 1]
    arms_out: list[dict[str, Any]] = []
    by_arm = {a.name: matured[matured["arm"] == a.name] for a in experiment.arms}
    for arm in experiment.arms:
        mine, every = by_arm[arm.name], rows[rows["arm"] == arm.name]
        n, paid = len(mine), int(mine["paid_7d"].sum())
        low, high = (
            proportion_confint(paid, n, alpha=experiment.alpha, method="wilson")
            if n
            else (None, None)
        )
        money: list[dict[str, Any]] = []
        for currency, group in mine.groupby("currency", sort=True):
            values = group["value"].to_numpy(float)
            lo, hi = _bootstrap_mean(values, experiment.alpha)
            money.append(
                {
                    "currency": str(currency),
                    "reminders": len(values),
                    "collected": _money(float(values.sum()), str(currency)),
                    "per_reminder": _money(float(values.mean()), str(currency)),
                    "per_reminder_ci": [
                        None if lo is None else _money(lo, str(currency)),
                        None if hi is None else _money(hi, str(currency)),
                    ],
                    "ci_method": ARM_MONEY_CI,
                }
            )
        arms_out.append(
            {
                "arm": arm.name,
                "kind": arm.kind,
                "description": arm.describe(),
                "share": arm.share,
                "n": len(every),
                "customers": int(every["customer_id"].nunique()),
                "matured_n": n,
                "required_n": need[arm.name],
                "paid_7d": paid,
                "paid_share": _round(paid / n) if n else None,
                "paid_share_ci": [_round(low), _round(high)],
                "money": money,
            }
        )
    enough = all(a["matured_n"] >= a["required_n"] for a in arms_out)
    control = experiment.control
    comparisons = []
    verdicts = []
    for arm in experiment.arms[1:]:
        comp: dict[str, Any] = {"arm": arm.name, "versus": control.name}
        if not enough:
            comp.update(paid_share=None, money=[], verdict=NOT_ENOUGH_DATA)
            comparisons.append(comp)
            continue
        a, b = by_arm[control.name], by_arm[arm.name]
        xa, na, xb, nb = int(a["paid_7d"].sum()), len(a), int(b["paid_7d"].sum()), len(b)
        if 0 < xa + xb < na + nb:
            z, p = proportions_ztest([xb, xa], [nb, na])
        else:
            z, p = 0.0, 1.0  # nobody (or everybody) paid in both arms: no evidence either way
        low, high = confint_proportions_2indep(
            xb, nb, xa, na, method="newcomb", compare="diff", alpha=alpha
        )
        paid_verdict = _verdict(_round(low), _round(high)) if p < alpha else NO_DIFFERENCE
        comp["paid_share"] = {
            "difference": _round(xb / nb - xa / na),
            "ci": [_round(low), _round(high)],
            "test": PAID_TEST,
            "z": _round(z),
            "p_value": _round(p, 6),
            "verdict": paid_verdict,
        }
        money = []
        for currency in sorted(set(a["currency"]) | set(b["currency"])):
            va = a.loc[a["currency"] == currency, "value"].to_numpy(float)
            vb = b.loc[b["currency"] == currency, "value"].to_numpy(float)
            entry: dict[str, Any] = {"currency": str(currency), "test": MONEY_TEST}
            if len(va) < 2 or len(vb) < 2 or (np.var(va) == 0 and np.var(vb) == 0):
                diff = (vb.mean() if len(vb) else 0.0) - (va.mean() if len(va) else 0.0)
                entry.update(
                    difference=_money(diff, str(currency)),
                    ci=[None, None],
                    p_value=None,
                    verdict=NO_DIFFERENCE,
                )
            else:
                res = stats.ttest_ind(vb, va, equal_var=False)
                ci = res.confidence_interval(confidence_level=1 - alpha)
                pv = float(res.pvalue)
                entry.update(
                    difference=_money(float(vb.mean() - va.mean()), str(currency)),
                    ci=[
                        _money(float(ci.low), str(currency)),
                        _money(float(ci.high), str(currency)),
                    ],
                    p_value=_round(pv, 6),
                    verdict=_verdict(float(ci.low), float(ci.high))
                    if pv < alpha
                    else NO_DIFFERENCE,
                )
            money.append(entry)
        comp["money"] = money
        if experiment.metric == "paid_7d":
            primary: list[str] = [paid_verdict]
        else:
            primary = [str(m["verdict"]) for m in money] or [NO_DIFFERENCE]
        if "better" in primary and "worse" not in primary:
            comp["verdict"] = "better"
        elif "worse" in primary and "better" not in primary:
            comp["verdict"] = "worse"
        else:
            comp["verdict"] = NO_DIFFERENCE
        if comp["verdict"] != NO_DIFFERENCE:
            verdicts.append(f"{arm.name} {comp['verdict']} than {control.name}")
        comparisons.append(comp)
    if not enough:
        verdict = NOT_ENOUGH_DATA
    else:
        verdict = "; ".join(verdicts) or NO_DIFFERENCE
    return {
        "experiment": experiment.name,
        "stage": experiment.stage,
        "metric": experiment.metric,
        "status": status,
        "as_of": as_of.astimezone(dt.UTC).isoformat(),
        "start": experiment.start.isoformat(),
        "end": experiment.end.isoformat(),
        "window_days": WINDOW_DAYS,
        "mde": experiment.mde,
        "baseline": experiment.baseline,
        "alpha": experiment.alpha,
        "comparison_alpha": _round(alpha, 6),
        "power": experiment.power,
        "required_n": need,
        "enough_data": enough,
        "verdict": verdict,
        "srm": srm_check(experiment, rows),
        "arms": arms_out,
        "comparisons": comparisons,
    }


def to_markdown(report: dict[str, Any]) -> str:
    """The report as markdown (the experiment's Prefect artifact and the terminal view)."""
    lines = [
        f"# Experiment {report['experiment']} ({report['stage']}, {report['status']})",
        "",
        f"**Verdict: {report['verdict']}**. Primary metric: {report['metric']} "
        f"(within {report['window_days']} days of the reminder). Only matured reminders count; "
        f"each arm needs its required n (MDE {report['mde']:.1%} on the paid share from "
        f"{report['baseline']:.0%}, power {report['power']:.0%}, alpha "
        f"{report['comparison_alpha']}) before any verdict.",
        "",
        "| arm | does | n | matured n | required n | paid 7d | paid share (CI) "
        "| money / reminder (CI) |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for a in report["arms"]:
        share = "n/a" if a["paid_share"] is None else f"{a['paid_share']:.1%}"
        ci = a["paid_share_ci"]
        if ci[0] is not None:
            share += f" ({ci[0]:.1%} – {ci[1]:.1%})"
        money = (
            "; ".join(
                f"{m['currency']} {m['per_reminder']} ({m['per_reminder_ci'][0]} – "
                f"{m['per_reminder_ci'][1]})"
                for m in a["money"]
            )
            or "-"
        )
        lines.append(
            f"| {a['arm']} | {a['description']} | {a['n']} | {a['matured_n']} | "
            f"{a['required_n']} | {a['paid_7d']} | {share} | {money} |"
        )
    lines += [
        "",
        "| arm vs control | paid share difference (CI, p) "
        "| money / reminder difference (CI, p) | verdict |",
        "|---|---|---|---|",
    ]
    for c in report["comparisons"]:
        if c["paid_share"] is None:
            lines.append(f"| {c['arm']} vs {c['versus']} | - | - | {c['verdict']} |")
            continue
        ps = c["paid_share"]
        paid = (
            f"{ps['difference']:+.1%} ({ps['ci'][0]:+.1%} – {ps['ci'][1]:+.1%}, p={ps['p_value']})"
        )
        money = (
            "; ".join(
                f"{m['currency']} {m['difference']} ({m['ci'][0]} – {m['ci'][1]}, p={m['p_value']})"
                for m in c["money"]
            )
            or "-"
        )
        lines.append(f"| {c['arm']} vs {c['versus']} | {paid} | {money} | {c['verdict']} |")
    lines += ["", f"Tests: paid share: {PAID_TEST}; money: {MONEY_TEST}; per arm: {ARM_MONEY_CI}."]
    srm = report["srm"]
    lines.append(
        f"Sample ratio check ({srm['test']}): observed {srm['observed']}, expected "
        f"{srm['expected']}, p={srm['p_value']}."
    )
    if srm["warning"]:
        lines.append(f"\n**Warning: {srm['warning']}**")
    return "\n".join(lines)

"""Experiments as policy: the [[experiments]] tables, deterministic assignment, the arms'
effect on plan lines (pure: no database, no Prefect)."""

from __future__ import annotations

import datetime as dt
import tomllib
from typing import Any

import pandas as pd
import pytest

from dunning.errors import PolicyError
from dunning.experiments.assign import apply_experiments, assign, assign_many, bucket
from dunning.policy import DEFAULT_POLICY_PATH, parse_policy

AS_OF = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)  # 11:00 in Berlin


def _policy(*experiments: dict[str, Any]):
    data = tomllib.loads(DEFAULT_POLICY_PATH.read_text())
    data["experiments"] = list(experiments)
    return parse_policy(data, "test.toml")


def _exp(**changes: Any) -> dict[str, Any]:
    base = {
        "name": "wording",
        "stage": "overdue_1",
        "start": "2026-11-01",
        "end": "2026-12-31",
        "mde": 0.05,
        "arms": [{"name": "A", "share": 0.5}, {"name": "B", "share": 0.5, "variant": "B"}],
    }
    return base | changes


def test_experiment_is_read_from_the_policy_file():
    policy = _policy(_exp())
    (exp,) = policy.experiments
    assert exp.stage == "overdue_1" and exp.metric == "collected_7d"
    assert [a.kind for a in exp.arms] == ["control", "variant"]
    assert exp.start == dt.date(2026, 11, 1) and exp.running(AS_OF)
    assert policy.experiment("wording") is exp


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"stage": "overdue_9"}, "experiments[0].stage", "must be 'all' or one of"),
        (
            {"arms": [{"name": "A", "share": 0.5}, {"name": "B", "share": 0.4}]},
            "experiments[0].arms",
            "add up to 1",
        ),
        (
            {"arms": [{"name": "A", "share": 0.9}, {"name": "H", "share": 0.1, "holdout": True}]},
            "experiments[0].arms[1].holdout",
            "only for stage 'pre_due'",
        ),
        (
            {
                "stage": "pre_due",
                "arms": [{"name": "A", "share": 0.8}, {"name": "H", "share": 0.2, "holdout": True}],
            },
            "experiments[0].arms[1].share",
            "at most 0.1",
        ),
        ({"end": "2026-10-01"}, "experiments[0].end", "must not be before"),
        ({"metric": "opens"}, "experiments[0].metric", "must be one of"),
        (
            {"arms": [{"name": "A", "share": 0.5}, {"name": "B", "share": 0.5, "variant": "../x"}]},
            "experiments[0].arms[1].variant",
            "template variant suffix",
        ),
        (
            {
                "arms": [
                    {"name": "A", "share": 0.5},
                    {"name": "B", "share": 0.5, "send_hours": ["14:00", "09:00"]},
                ]
            },
            "experiments[0].arms[1].send_hours[1]",
            "later than",
        ),
    ],
)
def test_bad_experiment_names_the_key_and_the_fix(changes, key, words):
    with pytest.raises(PolicyError) as err:
        _policy(_exp(**changes))
    assert f"key '{key}'" in str(err.value) and words in str(err.value)


def test_overlapping_experiments_on_one_stage_are_refused():
    with pytest.raises(PolicyError, match="overlaps experiment 'wording'"):
        _policy(_exp(), _exp(name="other", stage="all", start="2026-12-01"))
    assert (
        len(_policy(_exp(), _exp(name="later", start="2027-01-01", end="2027-02-01")).experiments)
        == 2
    )


def test_holdout_up_to_ten_percent_at_pre_due_is_allowed():
    arms = [{"name": "A", "share": 0.9}, {"name": "H", "share": 0.1, "holdout": True}]
    (exp,) = _policy(_exp(stage="pre_due", arms=arms)).experiments
    assert exp.arms[1].kind == "holdout"


def test_assignment_is_deterministic_and_follows_the_shares():
    (exp,) = _policy(
        _exp(arms=[{"name": "A", "share": 0.7}, {"name": "B", "share": 0.3, "variant": "B"}])
    ).experiments
    ids = [f"cust-{i}" for i in range(4000)]
    first, again = assign_many(exp, ids), assign_many(exp, reversed(ids))
    assert first == again  # order- and shard-independent
    assert bucket("wording", "cust-1") == bucket("wording", "cust-1")
    share_b = sum(v == "B" for v in first.values()) / len(ids)
    assert 0.27 < share_b < 0.33
    # Another experiment shuffles customers independently.
    other = assign_many(_policy(_exp(name="x")).experiments[0], ids)
    assert 0.4 < sum(first[c] == other[c] for c in ids) / len(ids) < 0.6
    assert assign(exp, "cust-1").name == first["cust-1"]


def _lines(stage: str = "overdue_1", n: int = 40, channels=("email", "sms")) -> pd.DataFrame:
    rows = [
        {
            "invoice_id": i,
            "customer_id": f"c{i}",
            "stage": stage,
            "channel": ch,
            "action": "send",
            "reason": "",
            "not_before": pd.Timestamp(AS_OF),
        }
        for i in range(n)
        for ch in channels
    ]
    return pd.DataFrame(rows)


def test_variant_arm_labels_lines_and_control_keeps_the_templates():
    (exp,) = _policy(_exp()).experiments
    out = apply_experiments(_lines(), [exp], AS_OF, {})
    assert set(out["experiment"]) == {"wording"}
    for rec in out.to_dict("records"):
        assert rec["arm"] == assign(exp, rec["customer_id"]).name
        assert rec["variant"] == ("B" if rec["arm"] == "B" else None)
        assert rec["action"] == "send"
    # Another stage, or outside the dates: untouched.
    assert apply_experiments(_lines("due"), [exp], AS_OF, {})["experiment"].isna().all()
    later = AS_OF + dt.timedelta(days=60)
    assert apply_experiments(_lines(), [exp], later, {})["experiment"].isna().all()


def test_holdout_channel_and_send_hour_arms_act_on_the_lines():
    holdout = _exp(
        stage="pre_due",
        arms=[{"name": "A", "share": 0.9}, {"name": "H", "share": 0.1, "holdout": True}],
    )
    (exp,) = _policy(holdout).experiments
    out = apply_experiments(_lines("pre_due", 200), [exp], AS_OF, {})
    held = out[out["arm"] == "H"]
    assert len(held) and (held["action"] == "skip").all() and (held["reason"] == "holdout").all()
    assert (out.loc[out["arm"] == "A", "action"] == "send").all()

    arms = [{"name": "A", "share": 0.5}, {"name": "E", "share": 0.5, "channels": ["email"]}]
    (exp,) = _policy(_exp(name="ch", arms=arms)).experiments
    out = apply_experiments(_lines(), [exp], AS_OF, {})
    email_only = out[out["arm"] == "E"]
    assert (email_only.loc[email_only["channel"] == "sms", "reason"] == "experiment_channel").all()
    assert (email_only.loc[email_only["channel"] == "email", "action"] == "send").all()

    arms = [
        {"name": "A", "share": 0.5},
        {"name": "PM", "share": 0.5, "send_hours": ["14:00", "17:00"]},
    ]
    (exp,) = _policy(_exp(name="hours", arms=arms)).experiments
    zones = {f"c{i}": "Europe/Berlin" for i in range(40)}
    out = apply_experiments(_lines(), [exp], AS_OF, zones)  # 11:00 in Berlin
    pm = out[out["arm"] == "PM"]
    assert (pm["action"] == "defer").all() and (pm["reason"] == "experiment_send_hours").all()
    assert (pm["not_before"] == pd.Timestamp("2026-11-24T13:00Z")).all()  # 14:00 Berlin
    assert (out.loc[out["arm"] == "A", "action"] == "send").all()


def test_a_promoted_arm_applies_to_everyone_without_labels():
    (exp,) = _policy(_exp()).experiments
    later = AS_OF + dt.timedelta(days=90)
    out = apply_experiments(_lines(), [exp], later, {}, promoted={"wording": "B"})
    assert out["experiment"].isna().all() and (out["variant"] == "B").all()

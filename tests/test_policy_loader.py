"""The policy file: the shipped default, YAML, the path setting, and errors naming the key."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from dunning.config import reload_settings
from dunning.errors import PolicyError
from dunning.policy import DEFAULT_POLICY_PATH, load_policy, parse_policy


def _default() -> dict:
    return tomllib.loads(DEFAULT_POLICY_PATH.read_text())


def test_default_policy_has_the_seed_ladder_and_the_required_segments():
    policy = load_policy()
    assert [(s.name, s.offset_days) for s in policy.ladder.stages] == [
        ("pre_due", -3),
        ("due", 0),
        ("overdue_1", 1),
        ("overdue_2", 6),
        ("final_notice", 11),
    ]
    assert [s.channels for s in policy.ladder.stages] == [
        ("email",),
        ("email", "sms"),
        ("email", "sms"),
        ("email", "sms"),
        ("email", "sms"),
    ]
    assert {"reliable", "occasional_late", "chronic_late", "at_risk", "new"} <= set(policy.segments)
    assert policy.ladder_for("new") == policy.ladder  # new keeps the default ladder unchanged
    assert policy.min_balance_for("EUR") == Decimal("1.00")
    assert policy.min_balance_for("JPY") == Decimal("100")
    assert (policy.send_window.start_minute, policy.send_window.end_minute) == (540, 1080)
    assert policy.send_window.weekdays == frozenset(range(5))
    assert all(rule.doc for rule in policy.rules)  # the file documents each rule


def test_segment_override_changes_only_what_it_names():
    policy = load_policy()
    at_risk = policy.ladder_for("at_risk")
    final, due = at_risk.stage("final_notice"), policy.ladder_for("reliable").stage("due")
    assert final is not None and final.offset_days == 7
    assert at_risk.stage("overdue_1") == policy.ladder.stage("overdue_1")
    assert due is not None and due.channels == ("email",)


def test_yaml_file_and_the_path_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = _default()
    data["min_balance"] = "5.00"
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("DUNNING_POLICY_PATH", str(path))
    reload_settings()
    assert load_policy().min_balance == Decimal("5.00")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (
            lambda d: d["ladder"]["stages"][1].__setitem__("offset_days", "zero"),
            "ladder.stages[1].offset_days",
        ),
        (
            lambda d: d["ladder"]["stages"][2].__setitem__("offset_days", -10),
            "ladder.stages.overdue_1.offset_days",
        ),
        (
            lambda d: d["ladder"]["stages"][0].__setitem__("channels", ["fax"]),
            "ladder.stages[0].channels",
        ),
        (lambda d: d.__setitem__("min_balance", "lots"), "min_balance"),
        (lambda d: d["send_window"].__setitem__("start", "25:99"), "send_window.start"),
        (lambda d: d["send_window"].__setitem__("end", "08:00"), "send_window.end"),
        (lambda d: d["send_window"].__setitem__("weekdays", ["monday"]), "send_window.weekdays"),
        (
            lambda d: d["segments"]["rules"][0]["when"].__setitem__("speed_min", 3),
            "segments.rules[0].when.speed_min",
        ),
        (
            lambda d: d["segments"]["ladders"]["at_risk"]["stages"].__setitem__("overdue_9", {}),
            "segments.ladders.at_risk.stages.overdue_9",
        ),
        (
            lambda d: d["segments"]["ladders"]["at_risk"]["stages"]["final_notice"].__setitem__(
                "enabled", False
            ),
            "segments.ladders.at_risk.stages.final_notice.enabled",
        ),
        (lambda d: d.__setitem__("ladders", {}), "ladders"),
    ],
)
def test_invalid_policy_names_the_key(change, key):
    data = _default()
    change(data)
    with pytest.raises(PolicyError) as err:
        parse_policy(data, "test.toml")
    assert f"'{key}'" in str(err.value)
    assert "test.toml" in str(err.value)


def test_unreadable_and_malformed_files(tmp_path: Path):
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("ladder = [")
    with pytest.raises(PolicyError, match="not valid TOML/YAML"):
        load_policy(bad)

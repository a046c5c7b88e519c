"""Reading and validating the policy file (TOML or YAML) into a ``Policy``."""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from dunning.config import get_settings
from dunning.errors import PolicyError
from dunning.policy.experiments import (
    ALL_STAGES,
    HOLDOUT_MAX_SHARE,
    HOLDOUT_STAGE,
    METRICS,
    Arm,
    Experiment,
)
from dunning.policy.model import (
    CHANNEL_NAMES,
    CONSOLIDATE_MODES,
    DEFAULT_VOICE_WINDOW,
    PAYMENT_FAILED,
    PROMISE_BROKEN,
    ExtraStage,
    Ladder,
    Policy,
    SendWindow,
    Stage,
)
from dunning.segments.model import FEATURE_NAMES, Condition, SegmentRule

DEFAULT_POLICY_PATH = Path(__file__).resolve().parent / "default_policy.toml"
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Reader:
    """Typed access to the parsed file; every error names the file and the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, key: str, problem: str) -> PolicyError:
        return PolicyError(f"policy file {self.source}: key '{key}' {problem}. Fix it and retry.")

    def table(self, data: dict[str, Any], key: str, path: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.error(path, f"must be a table, got {value!r}")
        return value

    def integer(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path, f"must be an integer, got {value!r}")
        return value

    def number(self, value: Any, path: str) -> float | bool:
        if isinstance(value, bool):
            return value
        if not isinstance(value, int | float):
            raise self.error(path, f"must be a number or true/false, got {value!r}")
        return float(value)

    def text(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(path, f"must be a non-empty string, got {value!r}")
        return value

    def amount(self, value: Any, path: str) -> Decimal:
        try:
            result = Decimal(str(value))
        except InvalidOperation:
            raise self.error(path, f'must be an amount such as "1.00", got {value!r}') from None
        if not result.is_finite() or result < 0:
            raise self.error(path, f"must be a non-negative amount, got {value!r}")
        return result

    def amounts(self, data: dict[str, Any], key: str) -> dict[str, Decimal]:
        table = self.table(data, key, key)
        return {cur: self.amount(v, f"{key}.{cur}") for cur, v in table.items()}

    def channels(self, value: Any, path: str) -> tuple[str, ...]:
        if not isinstance(value, list) or any(c not in CHANNEL_NAMES for c in value):
            raise self.error(
                path, f"must be a list of channels from {list(CHANNEL_NAMES)}, got {value!r}"
            )
        return tuple(dict.fromkeys(value))

    def clock(self, value: Any, path: str) -> int:
        try:
            hours, minutes = str(value).split(":")
            total = int(hours) * 60 + int(minutes)
        except ValueError:
            raise self.error(path, f"must be a time HH:MM, got {value!r}") from None
        if not 0 <= total <= 1440 or not 0 <= int(minutes) < 60:
            raise self.error(path, f"must be a time between 00:00 and 24:00, got {value!r}")
        return total


def load_policy(path: Path | None = None) -> Policy:
    """The policy read from ``path`` (None: settings.policy_path, else the default policy)."""
    path = path or get_settings().policy_path or DEFAULT_POLICY_PATH
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(
            f"cannot read policy file {path}: {exc.strerror}. Check DUNNING_POLICY_PATH."
        ) from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(raw) or {}
        else:
            data = tomllib.loads(raw)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise PolicyError(f"policy file {path} is not valid TOML/YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"policy file {path} must hold a table of settings at the top level")
    return parse_policy(data, str(path))


def parse_policy(data: dict[str, Any], source: str = "<policy>") -> Policy:
    """The policy described by the parsed mapping ``data``; PolicyError names a bad key."""
    r = _Reader(source)
    known = {
        "min_balance",
        "min_balance_by_currency",
        "send_window",
        "voice_window",
        "voice",
        "ladder",
        "payment_failed",
        "promise_broken",
        "segments",
        "blackout",
        "consolidate",
        "max_sms_per_customer_per_day",
        "experiments",
    }
    for key in data:
        if key not in known:
            raise r.error(key, f"is unknown; expected one of {sorted(known)}")
    ladder = _ladder(r, r.table(data, "ladder", "ladder"))
    seg = r.table(data, "segments", "segments")
    ladders = {
        name: _override(r, ladder, r.table(spec, name, f"segments.ladders.{name}"), name)
        for spec in [r.table(seg, "ladders", "segments.ladders")]
        for name in spec
    }
    grouping = r.table(seg, "consolidate", "segments.consolidate")
    sms_cap = data.get("max_sms_per_customer_per_day", 1)
    if r.integer(sms_cap, "max_sms_per_customer_per_day") < 1:
        raise r.error("max_sms_per_customer_per_day", f"must be at least 1, got {sms_cap}")
    rules = tuple(_rule(r, rule, i) for i, rule in enumerate(seg.get("rules", [])))
    blackout = _blackout(r, data.get("blackout", []))
    return Policy(
        ladder=ladder,
        segment_ladders=ladders,
        rules=rules,
        fallback_segment=r.text(seg.get("fallback", "reliable"), "segments.fallback"),
        send_window=replace(
            _window(r, r.table(data, "send_window", "send_window"), "send_window"),
            blackout=blackout,
        ),
        voice_window=replace(
            _window(
                r,
                r.table(data, "voice_window", "voice_window"),
                "voice_window",
                DEFAULT_VOICE_WINDOW,
            ),
            blackout=blackout,
        ),
        voice_retry_no_answer=_voice_retry(r, r.table(data, "voice", "voice")),
        min_balance=r.amount(data.get("min_balance", "1.00"), "min_balance"),
        min_balance_by_currency=r.amounts(data, "min_balance_by_currency"),
        large_overdue_balance=r.amount(
            seg.get("large_overdue_balance", "5000"), "segments.large_overdue_balance"
        ),
        large_overdue_by_currency={
            f"{c}": r.amount(v, f"segments.large_overdue_by_currency.{c}")
            for c, v in r.table(
                seg, "large_overdue_by_currency", "segments.large_overdue_by_currency"
            ).items()
        },
        payment_failed=_extra(r, data, PAYMENT_FAILED, ("email", "sms"), "helpful"),
        promise_broken=_extra(r, data, PROMISE_BROKEN, ("email", "sms"), "firm"),
        source=source,
        consolidate=_consolidate(r, data.get("consolidate", "invoice"), "consolidate"),
        segment_consolidate={
            name: _consolidate(r, value, f"segments.consolidate.{name}")
            for name, value in grouping.items()
        },
        max_sms_per_customer_per_day=sms_cap,
        experiments=_experiments(r, data.get("experiments", []), ladder),
    )


def _consolidate(r: _Reader, value: Any, path: str) -> str:
    """``consolidate`` (top level) or ``segments.consolidate.<segment>``: "invoice" (one
    message per invoice) or "customer" (one email and at most one SMS per customer per run,
    listing every invoice)."""
    if not isinstance(value, str) or value not in CONSOLIDATE_MODES:
        raise r.error(path, f"must be one of {list(CONSOLIDATE_MODES)}, got {value!r}")
    return value


def _stage(r: _Reader, spec: Any, path: str) -> Stage:
    if not isinstance(spec, dict):
        raise r.error(path, f"must be a table, got {spec!r}")
    name = r.text(spec.get("name"), f"{path}.name")
    return Stage(
        name=name,
        offset_days=r.integer(spec.get("offset_days"), f"{path}.offset_days"),
        channels=r.channels(spec.get("channels", ["email"]), f"{path}.channels"),
        tone=r.text(spec.get("tone", "neutral"), f"{path}.tone"),
    )


def _check_order(r: _Reader, stages: tuple[Stage, ...], path: str) -> None:
    # The planner ranks stages by position, so offsets must grow with escalation.
    for lower, higher in zip(stages, stages[1:], strict=False):
        if higher.offset_days <= lower.offset_days:
            raise r.error(
                f"{path}.{higher.name}.offset_days",
                f"must be greater than the offset of {lower.name} ({lower.offset_days})",
            )


def _repeat(
    r: _Reader, spec: dict[str, Any], path: str, stages: tuple[Stage, ...], base: Ladder | None
) -> Ladder:
    """The ladder of ``stages`` with the repeat, gap and escalation keys of ``spec`` (a
    segment's keys default to ``base``'s)."""
    default = base or Ladder(stages)
    every = r.integer(
        spec.get("repeat_every_days", default.repeat_every_days), f"{path}.repeat_every_days"
    )
    most = r.integer(spec.get("repeat_max", default.repeat_max), f"{path}.repeat_max")
    if every < 0 or most < 0 or (most > 0 and every == 0):
        raise r.error(f"{path}.repeat_every_days", "must be positive when repeat_max is set")
    gap = r.integer(spec.get("min_gap_days", default.min_gap_days), f"{path}.min_gap_days")
    if gap < 1:
        raise r.error(f"{path}.min_gap_days", f"must be at least 1 (one local day), got {gap}")
    until_paid = spec.get("until_paid", default.until_paid)
    if not isinstance(until_paid, bool):
        raise r.error(f"{path}.until_paid", f"must be true or false, got {until_paid!r}")
    cap = spec.get("escalate_after_days", default.escalate_after_days)
    if cap is not None:
        cap = r.integer(cap, f"{path}.escalate_after_days")
        if cap <= stages[-1].offset_days:
            raise r.error(
                f"{path}.escalate_after_days",
                f"must be greater than the offset of {stages[-1].name} ({stages[-1].offset_days})",
            )
    if until_paid and (every == 0 or cap is None):
        raise r.error(
            f"{path}.until_paid",
            "needs repeat_every_days > 0 and escalate_after_days (the cap on repeats)",
        )
    return Ladder(stages, every, most, gap, until_paid, cap)


def _ladder(r: _Reader, spec: dict[str, Any]) -> Ladder:
    raw = spec.get("stages")
    if not isinstance(raw, list) or not raw:
        raise r.error("ladder.stages", "must be a non-empty list of stage tables")
    stages = tuple(_stage(r, s, f"ladder.stages[{i}]") for i, s in enumerate(raw))
    names = [s.name for s in stages]
    if len(set(names)) != len(names) or {PAYMENT_FAILED, PROMISE_BROKEN} & set(names):
        raise r.error(
            "ladder.stages",
            f"must have unique names other than payment_failed/promise_broken, got {names}",
        )
    _check_order(r, stages, "ladder.stages")
    return _repeat(r, spec, "ladder", stages, None)


def _override(r: _Reader, base: Ladder, spec: dict[str, Any], segment: str) -> Ladder:
    path = f"segments.ladders.{segment}"
    changes = r.table(spec, "stages", f"{path}.stages")
    stages = []
    for stage in base.stages:
        change = r.table(changes, stage.name, f"{path}.stages.{stage.name}")
        spath = f"{path}.stages.{stage.name}"
        if change.get("enabled", True) is False:
            continue
        stages.append(
            replace(
                stage,
                offset_days=r.integer(
                    change.get("offset_days", stage.offset_days), f"{spath}.offset_days"
                ),
                channels=r.channels(
                    change.get("channels", list(stage.channels)), f"{spath}.channels"
                ),
                tone=r.text(change.get("tone", stage.tone), f"{spath}.tone"),
            )
        )
    if stages[-1:] != [s for s in stages if s.name == base.stages[-1].name]:
        # Repeats and catch-up ranks hang off the final stage, so every ladder keeps it.
        raise r.error(
            f"{path}.stages.{base.stages[-1].name}.enabled", "cannot be false (the final stage)"
        )
    unknown = set(changes) - {s.name for s in base.stages}
    if unknown:
        raise r.error(f"{path}.stages.{sorted(unknown)[0]}", "is not a stage of the default ladder")
    _check_order(r, tuple(stages), f"{path}.stages")
    return _repeat(r, spec, path, tuple(stages), base)


def _rule(r: _Reader, spec: Any, index: int) -> SegmentRule:
    path = f"segments.rules[{index}]"
    if not isinstance(spec, dict):
        raise r.error(path, f"must be a table, got {spec!r}")
    when = spec.get("when", {})
    if not isinstance(when, dict):
        raise r.error(f"{path}.when", f"must be a table of conditions, got {when!r}")
    conditions = []
    for key, value in when.items():
        feature, op = key, "=="
        for suffix, sym in (("_min", ">="), ("_max", "<=")):
            if key.endswith(suffix) and key[: -len(suffix)] in FEATURE_NAMES:
                feature, op = key[: -len(suffix)], sym
        if feature not in FEATURE_NAMES:
            raise r.error(
                f"{path}.when.{key}", f"names no feature; features are {list(FEATURE_NAMES)}"
            )
        conditions.append(Condition(feature, op, r.number(value, f"{path}.when.{key}")))
    return SegmentRule(
        segment=r.text(spec.get("segment"), f"{path}.segment"),
        conditions=tuple(conditions),
        doc=str(spec.get("doc", "")),
    )


def _window(
    r: _Reader, spec: dict[str, Any], key: str, default: SendWindow = SendWindow()
) -> SendWindow:
    """The window table ``key`` (send_window or voice_window); ``default`` fills what is unset."""
    days = spec.get("weekdays", [_WEEKDAYS[d] for d in sorted(default.weekdays)])
    if not isinstance(days, list) or not days or any(d not in _WEEKDAYS for d in days):
        raise r.error(
            f"{key}.weekdays", f"must be a list of days from {list(_WEEKDAYS)}, got {days!r}"
        )
    start = r.clock(spec.get("start", _hhmm(default.start_minute)), f"{key}.start")
    end = r.clock(spec.get("end", _hhmm(default.end_minute)), f"{key}.end")
    if end <= start:
        raise r.error(f"{key}.end", f"must be later than {key}.start")
    skip = spec.get("skip_holidays", default.skip_holidays)
    if not isinstance(skip, bool):
        raise r.error(f"{key}.skip_holidays", f"must be true or false, got {skip!r}")
    return SendWindow(start, end, frozenset(_WEEKDAYS.index(d) for d in days), skip)


def _day(r: _Reader, value: Any, path: str) -> date:
    # TOML has a date type (from = 2026-12-24); YAML and quoted TOML give a string.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = str(value)
    try:
        if len(text) != 10:  # fromisoformat would also take 20261224
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise r.error(path, f"must be a date YYYY-MM-DD, got {value!r}") from None


def _blackout(r: _Reader, spec: Any) -> tuple[tuple[date, date], ...]:
    """The company blackout periods: ``blackout = [{from = "2026-12-24", to = "2027-01-01"}]``.

    Each period is a pair of local dates, both included, shorter than a year (else the
    window would never open).
    """
    if not isinstance(spec, list):
        raise r.error(
            "blackout",
            f'must be a list of {{from = "YYYY-MM-DD", to = "YYYY-MM-DD"}} tables, got {spec!r}',
        )
    periods = []
    for i, item in enumerate(spec):
        path = f"blackout[{i}]"
        if not isinstance(item, dict) or set(item) != {"from", "to"}:
            raise r.error(
                path, f'must be a table {{from = "YYYY-MM-DD", to = "YYYY-MM-DD"}}, got {item!r}'
            )
        first, last = _day(r, item["from"], f"{path}.from"), _day(r, item["to"], f"{path}.to")
        if last < first:
            raise r.error(f"{path}.to", f"must not be before {path}.from ({first})")
        if (last - first).days >= 365:
            raise r.error(
                f"{path}.to", "must be less than a year after from: reminders would never go out"
            )
        periods.append((first, last))
    return tuple(periods)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _voice_retry(r: _Reader, spec: dict[str, Any]) -> bool:
    unknown = set(spec) - {"retry_no_answer"}
    if unknown:
        raise r.error(f"voice.{sorted(unknown)[0]}", "is unknown; expected retry_no_answer")
    retry = spec.get("retry_no_answer", False)
    if not isinstance(retry, bool):
        raise r.error("voice.retry_no_answer", f"must be true or false, got {retry!r}")
    return retry


def _extra(
    r: _Reader, data: dict[str, Any], name: str, channels: tuple[str, ...], tone: str
) -> ExtraStage:
    spec = r.table(data, name, name)
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        raise r.error(f"{name}.enabled", f"must be true or false, got {enabled!r}")
    return ExtraStage(
        name=name,
        channels=r.channels(spec.get("channels", list(channels)), f"{name}.channels"),
        tone=r.text(spec.get("tone", tone), f"{name}.tone"),
        enabled=enabled,
    )


_EXPERIMENT_KEYS = {"name", "stage", "arms", "start", "end", "metric", "mde", "baseline"}
_EXPERIMENT_KEYS |= {"alpha", "power"}
_ARM_KEYS = {"name", "share", "variant", "send_hours", "channels", "holdout"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")
_VARIANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,15}$")


def _fraction(r: _Reader, value: Any, path: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise r.error(path, f"must be a number, got {value!r}")
    if not low < float(value) < high:
        raise r.error(path, f"must be between {low} and {high} (exclusive), got {value!r}")
    return float(value)


def _arm(r: _Reader, spec: Any, path: str) -> Arm:
    if not isinstance(spec, dict):
        raise r.error(path, f"must be a table, got {spec!r}")
    unknown = set(spec) - _ARM_KEYS
    if unknown:
        raise r.error(f"{path}.{sorted(unknown)[0]}", f"is unknown; expected {sorted(_ARM_KEYS)}")
    name = r.text(spec.get("name"), f"{path}.name")
    if not _NAME.match(name):
        raise r.error(f"{path}.name", f"must be letters, digits, _ . - (at most 48), got {name!r}")
    share = _fraction(r, spec.get("share"), f"{path}.share", 0.0, 1.0 + 1e-9)
    kinds = [k for k in ("variant", "send_hours", "channels", "holdout") if k in spec]
    if len(kinds) > 1:
        raise r.error(
            f"{path}.{kinds[1]}", f"cannot be combined with {kinds[0]}: one change per arm"
        )
    variant = spec.get("variant")
    if variant is not None and (
        not isinstance(variant, str) or not _VARIANT.match(variant) or variant == "subject"
    ):
        raise r.error(
            f"{path}.variant",
            f'must be a template variant suffix such as "B" (file <stage>/email.<lang>.B.txt), '
            f"got {variant!r}",
        )
    hours = spec.get("send_hours")
    window = None
    if hours is not None:
        if not isinstance(hours, list) or len(hours) != 2:
            raise r.error(f"{path}.send_hours", f'must be ["HH:MM", "HH:MM"], got {hours!r}')
        window = (
            r.clock(hours[0], f"{path}.send_hours[0]"),
            r.clock(hours[1], f"{path}.send_hours[1]"),
        )
        if window[1] <= window[0]:
            raise r.error(f"{path}.send_hours[1]", "must be later than send_hours[0]")
    channels = spec.get("channels")
    holdout = spec.get("holdout", False)
    if not isinstance(holdout, bool):
        raise r.error(f"{path}.holdout", f"must be true or false, got {holdout!r}")
    return Arm(
        name=name,
        share=share,
        variant=variant,
        send_hours=window,
        channels=None if channels is None else r.channels(channels, f"{path}.channels"),
        holdout=holdout,
    )


def _experiment(r: _Reader, spec: Any, path: str, stages: set[str]) -> Experiment:
    if not isinstance(spec, dict):
        raise r.error(path, f"must be a table, got {spec!r}")
    unknown = set(spec) - _EXPERIMENT_KEYS
    if unknown:
        raise r.error(
            f"{path}.{sorted(unknown)[0]}", f"is unknown; expected {sorted(_EXPERIMENT_KEYS)}"
        )
    name = r.text(spec.get("name"), f"{path}.name")
    if not _NAME.match(name):
        raise r.error(f"{path}.name", f"must be letters, digits, _ . - (at most 48), got {name!r}")
    stage = r.text(spec.get("stage", ALL_STAGES), f"{path}.stage")
    if stage != ALL_STAGES and stage not in stages:
        raise r.error(
            f"{path}.stage", f"must be {ALL_STAGES!r} or one of {sorted(stages)}, got {stage!r}"
        )
    raw = spec.get("arms")
    if not isinstance(raw, list) or len(raw) < 2:
        raise r.error(f"{path}.arms", "must list at least two arms ([[experiments.arms]] tables)")
    arms = tuple(_arm(r, a, f"{path}.arms[{i}]") for i, a in enumerate(raw))
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise r.error(f"{path}.arms", f"must have unique names, got {names}")
    total = sum(a.share for a in arms)
    if abs(total - 1.0) > 1e-6:
        raise r.error(f"{path}.arms", f"shares must add up to 1, got {round(total, 6)}")
    for i, arm in enumerate(arms):
        if not arm.holdout:
            continue
        if stage != HOLDOUT_STAGE:
            raise r.error(
                f"{path}.arms[{i}].holdout",
                f"is allowed only for stage {HOLDOUT_STAGE!r} (a reminder once overdue is "
                f"never withheld), got stage {stage!r}; use a variant or send_hours arm",
            )
        if arm.share > HOLDOUT_MAX_SHARE + 1e-9:
            raise r.error(
                f"{path}.arms[{i}].share",
                f"is {arm.share} for a holdout arm; at most {HOLDOUT_MAX_SHARE} is allowed",
            )
    if arms[0].holdout:
        raise r.error(
            f"{path}.arms[0]", "is the control arm and cannot be a holdout; list it later"
        )
    start, end = (
        _day(r, spec.get("start"), f"{path}.start"),
        _day(r, spec.get("end"), f"{path}.end"),
    )
    if end < start:
        raise r.error(f"{path}.end", f"must not be before {path}.start ({start})")
    metric = spec.get("metric", METRICS[0])
    if metric not in METRICS:
        raise r.error(f"{path}.metric", f"must be one of {list(METRICS)}, got {metric!r}")
    baseline = _fraction(r, spec.get("baseline", 0.30), f"{path}.baseline", 0.0, 1.0)
    mde = _fraction(r, spec.get("mde", 0.05), f"{path}.mde", 0.0, 1.0)
    if baseline + mde >= 1.0:
        raise r.error(f"{path}.mde", f"baseline + mde must stay below 1, got {baseline + mde}")
    return Experiment(
        name=name,
        stage=stage,
        arms=arms,
        start=start,
        end=end,
        metric=str(metric),
        mde=mde,
        baseline=baseline,
        alpha=_fraction(r, spec.get("alpha", 0.05), f"{path}.alpha", 0.0, 0.5),
        power=_fraction(r, spec.get("power", 0.80), f"{path}.power", 0.5, 1.0),
    )


def _experiments(r: _Reader, spec: Any, ladder: Ladder) -> tuple[Experiment, ...]:
    """The ``[[experiments]]`` tables; two experiments of one stage may not overlap in time
    (a reminder takes part in at most one)."""
    if not isinstance(spec, list):
        raise r.error("experiments", f"must be a list of [[experiments]] tables, got {spec!r}")
    stages = {s.name for s in ladder.stages} | {PAYMENT_FAILED, PROMISE_BROKEN}
    out = tuple(_experiment(r, e, f"experiments[{i}]", stages) for i, e in enumerate(spec))
    for i, a in enumerate(out):
        for b in out[:i]:
            if a.name == b.name:
                raise r.error(f"experiments[{i}].name", f"{a.name!r} is used twice")
            shared = ALL_STAGES in (a.stage, b.stage) or a.stage == b.stage
            if shared and a.start <= b.end and b.start <= a.end:
                raise r.error(
                    f"experiments[{i}].start",
                    f"overlaps experiment {b.name!r} on stage {b.stage!r}; a reminder takes "
                    "part in one experiment at a time: move the dates or the stage",
                )
    return out

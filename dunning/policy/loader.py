"""Reading and validating the policy file (TOML or YAML) into a ``Policy``."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from dunning.config import get_settings
from dunning.errors import PolicyError
from dunning.policy.model import (
    CHANNEL_NAMES,
    CONSOLIDATE_MODES,
    DEFAULT_VOICE_WINDOW,
    PAYMENT_FAILED,
    PROMISE_BROKEN,
    Condition,
    ExtraStage,
    Ladder,
    Policy,
    SegmentRule,
    SendWindow,
    Stage,
)
from dunning.segments.features import FEATURE_NAMES

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
    )


def _consolidate(r: _Reader, value: Any, path: str) -> str:
    if value not in CONSOLIDATE_MODES:
        raise r.error(path, f"must be one of {list(CONSOLIDATE_MODES)}, got {value!r}")
    if value == "customer":
        # Refused rather than ignored: a policy must never be read as asking for something the
        # run does not do (one message per customer is not built yet).
        raise r.error(path, 'is "customer", which this version cannot send yet; use "invoice"')
    return str(value)


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

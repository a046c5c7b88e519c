"""The policy as data: ladder stages, per-segment ladders, send window, segment rules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from dunning.policy.experiments import Experiment
from dunning.segments.model import SegmentRule

CHANNEL_NAMES = ("email", "sms", "voice")
#: Suffix of the stage of a second call after a call nobody answered (final_notice.retry):
#: its own ledger row, so the retry is claimed once like every reminder.
RETRY_SUFFIX = ".retry"
#: The k-th sending of the final stage (k >= 2) is the stage ``<final>_r<k>``
#: (final_notice_r2, final_notice_r3, ...): its own ledger row, the final stage's templates.
REPEAT_MARK = "_r"
_REPEAT = re.compile(rf"^(?P<base>.+){REPEAT_MARK}(?P<n>\d+)$")


def repeat_stage(final: str, k: int) -> str:
    """The name of the ``k``-th sending (k >= 2) of the final stage ``final``."""
    return f"{final}{REPEAT_MARK}{k}"


def repeat_number(stage: str) -> int | None:
    """``k`` of a repeat stage ``<final>_r<k>``, None for any other stage (a call's retry
    ``<final>_r<k>.retry`` included: a message's ``repeat`` field counts it as 1)."""
    match = _REPEAT.match(stage)
    return int(match.group("n")) if match else None


def base_stage(stage: str) -> str:
    """The stage whose templates and tone ``stage`` uses (final_notice_r3 -> final_notice; a
    call's retry final_notice.retry -> final_notice)."""
    stage = stage.removesuffix(RETRY_SUFFIX)
    match = _REPEAT.match(stage)
    return match.group("base") if match else stage


#: How reminders are grouped into messages: one per invoice, or one per customer.
CONSOLIDATE_MODES = ("invoice", "customer")
#: Stages outside the ladder, each sent at most once per (invoice, channel).
PAYMENT_FAILED = "payment_failed"
PROMISE_BROKEN = "promise_broken"


@dataclass(frozen=True)
class Stage:
    """One rung of the ladder: reached ``offset_days`` after the due date (negative: before)."""

    name: str
    offset_days: int
    channels: tuple[str, ...]
    tone: str


@dataclass(frozen=True)
class Ladder:
    """The stages of one segment, in escalation order, and the repeat after the last one.

    Stages with ``offset_days`` > 0 are the overdue rungs: they are climbed one rung per
    reminder actually sent (see docs/policy.md, "Ladder semantics").
    """

    stages: tuple[Stage, ...]
    repeat_every_days: int = 0  # 0: no repeat after the final stage
    repeat_max: int = 0  # how many repeats after the final stage (r2..r{1+max})
    min_gap_days: int = 1  # local days between an overdue rung and the next one, at least
    until_paid: bool = False  # repeat every repeat_every_days until paid (repeat_max ignored)
    escalate_after_days: int | None = None  # the cap: no repeat from this many days overdue

    @property
    def repeats(self) -> int:
        """How many repeats of the final stage this ladder can send at most (r2..r{1+n}).

        With ``until_paid`` the count is bounded by the cap: each repeat comes at least
        ``repeat_every_days`` after the one before and none at or past
        ``escalate_after_days``.
        """
        if not self.repeat_every_days:
            return 0
        if self.until_paid and self.escalate_after_days is not None:
            span = self.escalate_after_days - self.stages[-1].offset_days
            return max(0, -(-span // self.repeat_every_days))
        return self.repeat_max

    @property
    def first_overdue(self) -> int:
        """Index of the first stage with a positive offset (the first contact once overdue);
        len(stages) when the ladder has none."""
        return next((i for i, s in enumerate(self.stages) if s.offset_days > 0), len(self.stages))

    def stage(self, name: str) -> Stage | None:
        """The stage called ``name`` or None."""
        return next((s for s in self.stages if s.name == name), None)


@dataclass(frozen=True)
class ExtraStage:
    """A reminder outside the ladder (payment_failed, promise_broken)."""

    name: str
    channels: tuple[str, ...]
    tone: str
    enabled: bool = True


@dataclass(frozen=True)
class SendWindow:
    """When reminders may go out, in the customer's local time."""

    start_minute: int = 9 * 60  # minutes after local midnight, inclusive
    end_minute: int = 18 * 60  # exclusive; 1440 means end of day
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday=0
    skip_holidays: bool = True
    #: Company blackout periods, (first, last) local dates, both included: nothing goes out.
    blackout: tuple[tuple[date, date], ...] = ()


#: Calls are stricter than messages: 10:00-17:00 local time on weekdays unless the policy
#: sets its own ``[voice_window]``.
DEFAULT_VOICE_WINDOW = SendWindow(start_minute=10 * 60, end_minute=17 * 60)


@dataclass(frozen=True)
class Policy:
    """Everything the planner needs; build it with ``dunning.policy.load_policy``."""

    ladder: Ladder
    segment_ladders: dict[str, Ladder]
    rules: tuple[SegmentRule, ...]
    fallback_segment: str
    send_window: SendWindow
    voice_window: SendWindow = DEFAULT_VOICE_WINDOW
    # A call that was not answered (no-answer) is placed once more on a later local day.
    voice_retry_no_answer: bool = False
    min_balance: Decimal = Decimal("1.00")
    min_balance_by_currency: dict[str, Decimal] = field(default_factory=dict)
    large_overdue_balance: Decimal = Decimal("5000")
    large_overdue_by_currency: dict[str, Decimal] = field(default_factory=dict)
    payment_failed: ExtraStage = ExtraStage(PAYMENT_FAILED, ("email", "sms"), "helpful")
    promise_broken: ExtraStage = ExtraStage(PROMISE_BROKEN, ("email",), "firm")
    source: str = ""
    consolidate: str = "invoice"  # "invoice": one message per invoice; "customer": one per customer
    segment_consolidate: dict[str, str] = field(default_factory=dict)
    max_sms_per_customer_per_day: int = 1
    #: The A/B tests of the ``[[experiments]]`` tables (dunning.experiments).
    experiments: tuple[Experiment, ...] = ()

    def experiment(self, name: str) -> Experiment | None:
        """The experiment called ``name`` or None."""
        return next((e for e in self.experiments if e.name == name), None)

    def ladder_for(self, segment: str) -> Ladder:
        """The ladder of ``segment`` (the default ladder when it has no override)."""
        return self.segment_ladders.get(segment, self.ladder)

    def consolidate_for(self, segment: str) -> str:
        """How messages of ``segment`` are grouped: "invoice" or "customer"."""
        return self.segment_consolidate.get(segment, self.consolidate)

    @property
    def channels(self) -> frozenset[str]:
        """Every channel some stage of the policy can use (ladders of every segment, enabled
        extra stages). A call's digit 2 sends the payment link by SMS, so voice brings sms."""
        ladders = [self.ladder, *self.segment_ladders.values()]
        used = {c for ladder in ladders for s in ladder.stages for c in s.channels}
        for extra in (self.payment_failed, self.promise_broken):
            if extra.enabled:
                used.update(extra.channels)
        if "voice" in used:
            used.add("sms")
        return frozenset(used)

    @property
    def segments(self) -> tuple[str, ...]:
        """Every segment name the rules can produce, in rule order, fallback last."""
        names = dict.fromkeys(r.segment for r in self.rules)
        names[self.fallback_segment] = None
        return tuple(names)

    @property
    def stage_order(self) -> tuple[str, ...]:
        """Stage names of the default ladder in escalation order (the global rank)."""
        return tuple(s.name for s in self.ladder.stages)

    @property
    def stage_names(self) -> tuple[str, ...]:
        """Every stage a reminder of this policy can be planned at, by its base name: the
        default ladder's stages in escalation order (segment ladders use a subset of them),
        then payment_failed and promise_broken. Repeats and a call's retry count as their
        stage (see ``base_stage``)."""
        return (*self.stage_order, self.payment_failed.name, self.promise_broken.name)

    @property
    def stage_ranks(self) -> dict[str, int]:
        """How advanced each base stage is (0 = least), for the wording of a consolidated
        message: the default ladder's order, with a failed payment after the last rung at or
        before the due date and a broken promise after the first overdue rung."""
        stages = self.ladder.stages
        before = [s.name for s in stages if s.offset_days <= 0]
        overdue = [s.name for s in stages if s.offset_days > 0]
        order = [*before, self.payment_failed.name, *overdue[:1], self.promise_broken.name]
        order += overdue[1:]
        return {name: rank for rank, name in enumerate(dict.fromkeys(order))}

    def stage_rank(self, stage: str) -> tuple[int, int]:
        """How advanced ``stage`` is: (rank of its base stage in ``stage_ranks``, repeat
        number; 1 for a first send); a stage the policy does not have ranks like the first
        overdue rung (or, without one, after a failed payment)."""
        ranks = self.stage_ranks
        overdue = [s.name for s in self.ladder.stages if s.offset_days > 0]
        unknown = ranks[overdue[0]] if overdue else ranks[self.payment_failed.name]
        repeat = repeat_number(stage.removesuffix(RETRY_SUFFIX)) or 1
        return ranks.get(base_stage(stage), unknown), repeat

    def tone_for(self, stage: str, segment: str | None = None) -> str | None:
        """The tone of ``stage`` (a repeat or retry: its base stage's) in the ladder of
        ``segment`` (None: the default ladder); None for a stage the policy does not have."""
        base = base_stage(stage)
        for extra in (self.payment_failed, self.promise_broken):
            if base == extra.name:
                return extra.tone
        found = self.ladder_for(segment).stage(base) if segment else self.ladder.stage(base)
        return found.tone if found else None

    def min_balance_for(self, currency: str) -> Decimal:
        """The minimum balance worth a reminder in ``currency`` (major units): the
        ``min_balance_by_currency`` entry, else ``min_balance``. The planner and the claim
        re-check both ask this; a balance at or below it is skipped."""
        return self.min_balance_by_currency.get(currency, self.min_balance)

    def large_overdue_for(self, currency: str) -> Decimal:
        """The overdue balance in ``currency`` that makes a customer at risk."""
        return self.large_overdue_by_currency.get(currency, self.large_overdue_balance)

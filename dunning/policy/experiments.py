"""Experiments as policy: the ``[[experiments]]`` tables of the policy file, as data.

Pure: no Prefect, no database, no provider SDK (the import-linter contract of the core).
See docs/experiments.md for the file format.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

#: Primary metrics an experiment can be judged by: money collected within 7 days of the
#: reminder (per currency), or whether the invoice was paid within 7 days (a share).
METRICS = ("collected_7d", "paid_7d")
#: Days after a reminder (or after the reminder a holdout did not get) its outcome is read.
WINDOW_DAYS = 7
#: A holdout arm gets no reminder at all at its stage: only before the due date, and small.
HOLDOUT_STAGE = "pre_due"
HOLDOUT_MAX_SHARE = 0.10
#: Every stage (ladder and extra stages) takes part.
ALL_STAGES = "all"


@dataclass(frozen=True)
class Arm:
    """One arm of an experiment and what it changes for the customers assigned to it.

    At most one of ``variant``, ``send_hours``, ``channels`` and ``holdout`` is set; an arm
    with none of them is a control arm (the policy as it is).

    - ``variant``: the template variant suffix, e.g. ``"B"`` sends
      ``<stage>/email.<lang>.B.txt`` (subject ``email.<lang>.B.subject.txt`` when present,
      else the control subject) and ``<stage>/sms.<lang>.B.txt``; a locale without the
      variant falls back to the control template (reported by the run).
    - ``send_hours``: (start, end) in minutes after local midnight, end exclusive: the
      reminder goes out only then (inside the policy's send window, which still applies).
    - ``channels``: the only channels of the stage the arm uses.
    - ``holdout``: no reminder at this stage (pre_due only, share at most 10%).
    """

    name: str
    share: float
    variant: str | None = None
    send_hours: tuple[int, int] | None = None
    channels: tuple[str, ...] | None = None
    holdout: bool = False

    @property
    def kind(self) -> str:
        """``variant``, ``send_hours``, ``channels``, ``holdout`` or ``control``."""
        if self.holdout:
            return "holdout"
        if self.variant:
            return "variant"
        if self.send_hours:
            return "send_hours"
        if self.channels is not None:
            return "channels"
        return "control"

    def describe(self) -> str:
        """What the arm does, in a few words (for lists and reports)."""
        if self.holdout:
            return "holdout (no reminder)"
        if self.variant:
            return f"template variant {self.variant}"
        if self.send_hours:
            start, end = self.send_hours
            return f"sends {start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d} local"
        if self.channels is not None:
            return f"channels {'+'.join(self.channels) or 'none'}"
        return "control (policy as is)"


@dataclass(frozen=True)
class Experiment:
    """An A/B test of one stage (or ``all``) between ``start`` and ``end`` (UTC dates, both
    included). The first arm is the control every other arm is compared with.

    ``mde`` is the minimum detectable effect on the paid-within-7-days share (an absolute
    difference, 0.05 = five points) from ``baseline`` (the control's expected share); the
    sample size per arm follows from them, ``alpha`` and ``power`` (see
    :func:`dunning.experiments.analysis.required_sample_size`).
    """

    name: str
    stage: str
    arms: tuple[Arm, ...]
    start: dt.date
    end: dt.date
    metric: str = "collected_7d"
    mde: float = 0.05
    baseline: float = 0.30
    alpha: float = 0.05
    power: float = 0.80

    @property
    def control(self) -> Arm:
        """The arm every other arm is compared with (the first)."""
        return self.arms[0]

    def arm(self, name: str) -> Arm | None:
        """The arm called ``name`` or None."""
        return next((a for a in self.arms if a.name == name), None)

    def covers(self, stage: str) -> bool:
        """Whether a reminder at base stage ``stage`` takes part."""
        return self.stage in (ALL_STAGES, stage)

    def running(self, as_of: dt.datetime) -> bool:
        """Whether ``as_of`` (tz-aware) falls between start and end (UTC dates, inclusive)."""
        day = as_of.astimezone(dt.UTC).date()
        return self.start <= day <= self.end

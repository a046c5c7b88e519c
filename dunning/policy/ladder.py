"""The ladder as arrays: global stage codes, the stage each invoice has reached, channels, tone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dunning.policy.model import REPEAT_MARK, RETRY_SUFFIX, Ladder, Policy, repeat_stage

#: A skip reason with this prefix is an operator's decision: it consumes the stage.
OPERATOR_REASON_PREFIX = "operator"


@dataclass(frozen=True)
class StageTable:
    """Stage names by global code and, per (segment, code), the channels and tone.

    Codes 0..n-1 are ladder stages and repeats in escalation order (the code is the rank);
    the last two codes are payment_failed and promise_broken, which are outside the ladder.
    """

    names: tuple[str, ...]
    segments: tuple[str, ...]
    email: np.ndarray  # bool [segment, code]
    sms: np.ndarray  # bool [segment, code]
    voice: np.ndarray  # bool [segment, code]
    tones: np.ndarray  # object [segment, code]
    final: str  # name of the final ladder stage, which repeats

    @property
    def payment_failed(self) -> int:
        """The code of payment_failed."""
        return len(self.names) - 2

    @property
    def promise_broken(self) -> int:
        """The code of promise_broken."""
        return len(self.names) - 1

    def code_of(self, names: np.ndarray) -> np.ndarray:
        """Codes of stage ``names`` (-1 for a name no ladder knows)."""
        lookup = {n: i for i, n in enumerate(self.names)}
        # A call's retry (final_notice.retry) is outside the ladder: it ranks nothing.
        # A repeat beyond today's repeat_max (the policy was changed) still ranks at the top of
        # the ladder, so nothing lower is planned after it.
        return np.array(
            [
                -1
                if str(n).endswith(RETRY_SUFFIX)
                else lookup.get(
                    str(n),
                    self.payment_failed - 1 if str(n).startswith(self.final + REPEAT_MARK) else -1,
                )
                for n in names
            ],
            dtype=np.int64,
        )


def _repeat_names(policy: Policy) -> list[str]:
    most = max([policy.ladder.repeats] + [lad.repeats for lad in policy.segment_ladders.values()])
    final = policy.stage_order[-1]
    return [repeat_stage(final, r) for r in range(2, most + 2)]


def stage_table(policy: Policy) -> StageTable:
    """The StageTable of ``policy``."""
    names = list(policy.stage_order) + _repeat_names(policy)
    extras = (policy.payment_failed, policy.promise_broken)
    names += [e.name for e in extras]
    segs = policy.segments
    shape = (len(segs), len(names))
    email, sms, voice = np.zeros(shape, bool), np.zeros(shape, bool), np.zeros(shape, bool)
    tones = np.full(shape, "", dtype=object)
    for i, seg in enumerate(segs):
        ladder = policy.ladder_for(seg)
        final = ladder.stages[-1]
        for j, name in enumerate(names):
            stage = ladder.stage(name) or (
                final if name.startswith(final.name + REPEAT_MARK) else None
            )
            extra = next((e for e in extras if e.name == name), None)
            channels = stage.channels if stage else extra.channels if extra else ()
            email[i, j], sms[i, j] = "email" in channels, "sms" in channels
            voice[i, j] = "voice" in channels
            tones[i, j] = stage.tone if stage else extra.tone if extra else ""
    return StageTable(tuple(names), segs, email, sms, voice, tones, policy.stage_order[-1])


def reached_codes(ladder: Ladder, days: np.ndarray, table: StageTable) -> np.ndarray:
    """Per invoice, the code of the highest stage of ``ladder`` reached ``days`` after due,
    by days alone (no repeats); -1 means no stage is reached yet."""
    offsets = np.array([s.offset_days for s in ladder.stages], dtype=np.int64)
    codes = np.array([table.names.index(s.name) for s in ladder.stages], dtype=np.int64)
    idx = np.searchsorted(offsets, days, side="right") - 1
    return np.where(idx >= 0, codes[np.maximum(idx, 0)], -1)


def stage_reached(policy: Policy, days_overdue: int) -> str:
    """The name of the highest stage of ``policy``'s default ladder reached ``days_overdue``
    days after the due date, by days alone (no repeats, no ledger); the first stage when none
    is reached yet. What ``dunning preview`` renders for an invoice the plan has no line for."""
    table = stage_table(policy)
    code = int(reached_codes(policy.ladder, np.array([days_overdue], dtype=np.int64), table)[0])
    return table.names[code] if code >= 0 else policy.ladder.stages[0].name


def rung_codes(ladder: Ladder, table: StageTable) -> np.ndarray:
    """The global codes of ``ladder``'s overdue rungs in climbing order: the stages with a
    positive offset, then the repeats of the final stage (r2..r{1+repeats})."""
    final = ladder.stages[-1].name
    names = [s.name for s in ladder.stages[ladder.first_overdue :]]
    names += [repeat_stage(final, k) for k in range(2, ladder.repeats + 2)]
    return np.array([table.names.index(n) for n in names], dtype=np.int64)


def climb(
    ladder: Ladder,
    table: StageTable,
    days: np.ndarray,
    last_sent: np.ndarray,
    gap: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(stage code to plan, escalated flag) per invoice under ``ladder``.

    ``days``: days overdue in the customer's calendar; ``last_sent``: the highest ladder code
    the customer actually got (sent or later; -1 none); ``gap``: local days since that
    reminder (a large number when none). The rules (docs/policy.md, "Ladder semantics"):

    - before the first overdue rung is reached by days, the highest reached stage (pre_due,
      due) as before;
    - once overdue, the overdue rungs are climbed one per reminder sent: the first contact is
      the first overdue rung (overdue_1) whatever the days, the next rung only when reached by
      days and at least ``min_gap_days`` after the last reminder sent; a repeat of the final
      stage ``repeat_every_days`` after the last reminder sent, up to ``repeat_max`` repeats (or,
      ``until_paid``, while the days overdue stay under ``escalate_after_days``);
    - past the last repeat (or the cap), once the next repeat would have been due, the invoice
      is escalated instead of going silent.
    A code -1 means nothing is reached yet.
    """
    by_days = reached_codes(ladder, days, table)
    rungs = rung_codes(ladder, table)
    if len(rungs) == 0:
        return by_days, np.zeros(len(days), dtype=bool)
    n_stages = len(ladder.stages) - ladder.first_overdue  # rungs that are stages, not repeats
    offsets = np.array(
        [s.offset_days for s in ladder.stages[ladder.first_overdue :]]
        + [ladder.stages[-1].offset_days] * (len(rungs) - n_stages),
        dtype=np.int64,
    )
    # Position of the last rung sent; a code between rungs (a stage this segment's ladder
    # skips, a repeat beyond today's count) counts as the highest rung at or below it.
    pos = np.searchsorted(rungs, last_sent, side="right") - 1
    nxt = pos + 1
    exhausted = nxt >= len(rungs)
    at = np.minimum(nxt, len(rungs) - 1)
    is_repeat = at >= n_stages
    spacing = np.where(
        is_repeat, max(ladder.repeat_every_days, ladder.min_gap_days), ladder.min_gap_days
    )
    capped = np.zeros(len(days), dtype=bool)
    if ladder.escalate_after_days is not None:
        capped = is_repeat & (days >= ladder.escalate_after_days)
    allowed = ~exhausted & ~capped & (days >= offsets[at]) & ((nxt == 0) | (gap >= spacing))
    code = np.where(allowed, rungs[at], np.where(pos >= 0, rungs[np.maximum(pos, 0)], by_days))
    # Before the first overdue rung is reached, a lower rung's code from by_days stands.
    code = np.where((pos < 0) & ~allowed, by_days, code)
    wait = max(ladder.repeat_every_days, ladder.min_gap_days)
    escalated = (pos >= n_stages - 1) & (exhausted | capped) & (gap >= wait)
    return code, escalated

"""The ladder as arrays: global stage codes, the stage each invoice has reached, channels, tone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dunning.policy.model import RETRY_SUFFIX, Ladder, Policy

#: Ledger statuses that leave a (invoice, stage, channel) open: it is planned again.
OPEN_LEDGER_STATUSES = frozenset({"planned"})
#: Ledger statuses of a reminder that went (or may have gone) out to the customer.
WENT_OUT = frozenset(
    {"claimed", "sent", "delivered", "opened", "clicked", "replied", "bounced", "undelivered",
     "unknown"}
)


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
                    str(n), self.payment_failed - 1 if str(n).startswith(f"{self.final}_r") else -1
                )
                for n in names
            ],
            dtype=np.int64,
        )


def _repeat_names(policy: Policy) -> list[str]:
    most = max(
        [policy.ladder.repeat_max] + [lad.repeat_max for lad in policy.segment_ladders.values()]
    )
    final = policy.stage_order[-1]
    return [f"{final}_r{r}" for r in range(2, most + 2)]


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
            stage = ladder.stage(name) or (final if name.startswith(f"{final.name}_r") else None)
            extra = next((e for e in extras if e.name == name), None)
            channels = stage.channels if stage else extra.channels if extra else ()
            email[i, j], sms[i, j] = "email" in channels, "sms" in channels
            voice[i, j] = "voice" in channels
            tones[i, j] = stage.tone if stage else extra.tone if extra else ""
    return StageTable(tuple(names), segs, email, sms, voice, tones, policy.stage_order[-1])


def reached_codes(ladder: Ladder, days: np.ndarray, table: StageTable) -> np.ndarray:
    """Per invoice, the code of the highest stage of ``ladder`` reached ``days`` after due.

    -1 means no stage is reached yet.
    """
    offsets = np.array([s.offset_days for s in ladder.stages], dtype=np.int64)
    codes = np.array([table.names.index(s.name) for s in ladder.stages], dtype=np.int64)
    idx = np.searchsorted(offsets, days, side="right") - 1
    reached = np.where(idx >= 0, codes[np.maximum(idx, 0)], -1)
    if ladder.repeat_every_days and ladder.repeat_max:
        final = ladder.stages[-1]
        since = days - final.offset_days
        repeat = np.minimum(
            1 + np.maximum(since, 0) // ladder.repeat_every_days, 1 + ladder.repeat_max
        )
        final_code = table.names.index(final.name)
        reached = np.where((since >= 0) & (repeat >= 2), final_code + repeat - 1, reached)
    return reached

"""The floor: the same SDK calls as our delivery, from a plain thread pool, no Prefect, no DB.

The messages are composed from the ledger beforehand (untimed); the timed part only hands
the same batches to the same channel objects, so the gap to ``ours`` is our orchestration
and bookkeeping cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine

from dunning import ledger
from dunning.channels.base import Channel, OutboundMessage, SendResult
from dunning.render import compose


def composed_messages(engine: Engine, reminder_ids: Sequence[int]) -> list[OutboundMessage]:
    """The rendered messages of planned reminders (claims them: reset the ledger afterwards)."""
    out = ledger.claim(engine, reminder_ids, claimer="bench-floor", lease_seconds=3600)
    return [compose(data) for data in out.claimed]


def send_floor(
    messages: Sequence[OutboundMessage],
    channels: dict[str, Channel],
    batch_size: int,
    pool_size: int,
) -> list[SendResult]:
    """Every message's result after sending ``batch_size`` at a time, ``pool_size`` at once."""
    units = [
        [m for m in messages[i : i + batch_size] if m.channel == name]
        for i in range(0, len(messages), batch_size)
        for name in channels
    ]
    units = [u for u in units if u]
    with ThreadPoolExecutor(max_workers=max(1, pool_size)) as pool:
        done = pool.map(lambda unit: channels[unit[0].channel].send_batch(unit), units)
        return [r for results in done for r in results]

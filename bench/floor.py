"""The floor: the same SDK calls as our delivery, from a plain thread pool, no Prefect, no DB.

The messages are composed from the ledger beforehand (untimed); the timed part only hands
the same batches to the same channel objects, so the gap to ``ours`` is our orchestration,
bookkeeping and composition cost. ``floor_composed`` also composes inside the timed part
(each unit renders its messages, then sends them), which isolates composition's share.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from sqlalchemy import Engine

from dunning import ledger
from dunning.channels.base import Channel
from dunning.config import get_settings
from dunning.core.messages import OutboundMessage, ReminderData, SendResult
from dunning.render import compose


def claimed_data(engine: Engine, reminder_ids: Sequence[int]) -> list[ReminderData]:
    """The merge data of planned reminders (claims them: reset the ledger afterwards)."""
    out = ledger.claim(engine, reminder_ids, claimer="bench-floor", lease_seconds=3600)
    return list(out.claimed)


def composed_messages(engine: Engine, reminder_ids: Sequence[int]) -> list[OutboundMessage]:
    """The rendered messages of planned reminders (claims them: reset the ledger afterwards)."""
    render = partial(compose, settings=get_settings().channels)
    return [render(data) for data in claimed_data(engine, reminder_ids)]


def send_floor(
    messages: Sequence[OutboundMessage] | Sequence[ReminderData],
    channels: dict[str, Channel],
    batch_size: int,
    pool_size: int,
) -> list[SendResult]:
    """Every message's result after sending ``batch_size`` at a time, ``pool_size`` at once;
    given merge data instead of messages, each unit composes its messages first (timed)."""
    units: list[list[Any]] = [
        [m for m in messages[i : i + batch_size] if m.channel == name]
        for i in range(0, len(messages), batch_size)
        for name in channels
    ]
    units = [u for u in units if u]

    # Settings read once, as the delivery task does (parsing them per message would cost more
    # than the rendering).
    render = partial(compose, settings=get_settings().channels)

    def send(unit: list[Any]) -> list[SendResult]:
        if isinstance(unit[0], ReminderData):
            unit = [render(data) for data in unit]
        return channels[unit[0].channel].send_batch(unit)

    with ThreadPoolExecutor(max_workers=max(1, pool_size)) as pool:
        return [r for results in pool.map(send, units) for r in results]

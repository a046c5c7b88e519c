"""The ledger's status order, declared with ReminderStatus in dunning.core.status (rank, the
timestamp column each status sets, the forward-only rule); these names point there."""

from __future__ import annotations

from dunning.core.status import RANK as STATUS_RANK
from dunning.core.status import TIMESTAMP_COLUMN as STATUS_TIMESTAMP
from dunning.core.status import moves_forward

__all__ = ["STATUS_RANK", "STATUS_TIMESTAMP", "moves_forward"]

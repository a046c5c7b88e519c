"""The channel interface: send a batch of rendered messages, get one result per message.

The messages and results are the core's types (``dunning.core.messages``).
"""

from __future__ import annotations

from typing import Protocol

from dunning.core.messages import OutboundMessage, SendResult


class Channel(Protocol):
    """A way to send messages of one channel kind."""

    name: str  # "email" | "sms"
    provider: str

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        """Send ``messages``; one result per message, in order. Raise ProviderAuthError
        when the provider refuses our credentials (the run stops)."""
        ...

"""Outbox channel: writes each message as a file instead of sending it (the default when no
provider credentials are configured; handy for previews, demos and tests)."""

from __future__ import annotations

import os
from pathlib import Path

from dunning.channels.smtp import build_mime
from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage, SendResult


class OutboxChannel:
    """Writes <directory>/<channel>/<reminder_id>.eml (email) or .txt (sms, voice: what the
    call says); idempotent."""

    provider = "outbox"

    def __init__(self, name: str, directory: Path, settings: ChannelSettings) -> None:
        self.name = name
        self.directory = directory / name
        self.settings = settings

    def path_for(self, message: OutboundMessage) -> Path:
        """The file that holds ``message``."""
        suffix = ".eml" if message.channel == "email" else ".txt"
        return self.directory / f"{message.reminder_id}{suffix}"

    def _render(self, message: OutboundMessage) -> bytes:
        if message.channel == "email":
            return bytes(build_mime(message, self.settings))
        return f"To: {message.to}\n\n{message.text}\n".encode()

    def _send_one(self, message: OutboundMessage) -> SendResult:
        path = self.path_for(message)
        # The first write wins, like a provider that already accepted the message.
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
            tmp.write_bytes(self._render(message))
            os.replace(tmp, path)
        return SendResult(message.reminder_id, True, self.provider, f"outbox-{message.reminder_id}")

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        """One result per message: each written to its file (kept if already there)."""
        return [self._send_one(m) for m in messages]

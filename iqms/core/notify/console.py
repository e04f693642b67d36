"""The console provider: prints messages instead of sending them (demo, clinics without credentials)."""

from __future__ import annotations

import sys
import threading
import uuid
from typing import TextIO

from iqms.core.enums import NotifyChannel
from iqms.core.notify.base import NotificationProvider, OutgoingMessage


class ConsoleProvider(NotificationProvider):
    """Writes each message as one line to a stream (standard output by default)."""

    name = "console"

    def __init__(self, channel: NotifyChannel, stream: TextIO | None = None) -> None:
        if channel == NotifyChannel.NONE:
            raise ValueError("the console provider needs the sms or push channel")
        self.channel = channel  # type: ignore[misc]
        self._stream = stream
        self._lock = threading.Lock()

    def send_blocking(self, message: OutgoingMessage) -> str:
        stream = self._stream if self._stream is not None else sys.stdout
        body = " ".join(message.body.split())
        line = f"[{self.channel.value} to {message.recipient}] {body}"
        with self._lock:
            stream.write(line + "\n")
            stream.flush()
        return f"console-{uuid.uuid4().hex[:16]}"

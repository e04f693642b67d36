"""The one abstract base every notification provider (SMS, push, console) subclasses."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from iqms.core.enums import NotifyChannel
from iqms.core.errors import NotificationError


class DeliveryError(NotificationError):
    """A provider did not accept a message; ``code`` is the provider's error code if any."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.code = code


class TransientDeliveryError(DeliveryError):
    """Worth trying again later: timeouts, 5xx answers, rate limits, rejected credentials."""


class PermanentDeliveryError(DeliveryError):
    """Will never succeed for this recipient (invalid number, unregistered push token)."""

    def __init__(
        self, message: str, *, code: str | None = None, clear_push_token: bool = False
    ) -> None:
        super().__init__(message, code=code)
        self.clear_push_token = clear_push_token


@dataclass(frozen=True)
class OutgoingMessage:
    """What a provider sends: one recipient, a title (push only) and a plain-text body."""

    channel: NotifyChannel
    recipient: str
    body: str
    title: str = ""
    data: dict[str, str] = field(default_factory=dict)


class NotificationProvider(ABC):
    """A way to reach a patient. Subclasses implement :meth:`send_blocking`.

    Provider client libraries are synchronous; :meth:`send` runs them in a
    worker thread so the event loop (and Ctrl-C handling) stays responsive.
    """

    channel: ClassVar[NotifyChannel]
    name: ClassVar[str]
    # True if the provider can say whether it already accepted a message (see find_sent).
    can_reconcile: ClassVar[bool] = False

    @abstractmethod
    def send_blocking(self, message: OutgoingMessage) -> str:
        """Send one message; return the provider's message id.

        Raise :class:`TransientDeliveryError` or :class:`PermanentDeliveryError`.
        """

    async def send(self, message: OutgoingMessage) -> str:
        """Send one message without blocking the event loop; return the provider's id."""
        return await asyncio.to_thread(self.send_blocking, message)

    def find_sent_blocking(self, message: OutgoingMessage, since: datetime) -> str | None:
        """The provider's id of this message if it accepted it since ``since``, else None.

        Asked after a worker stopped while sending, before sending again. Only providers
        with ``can_reconcile`` can tell; network trouble raises :class:`TransientDeliveryError`.
        """
        return None

    async def find_sent(self, message: OutgoingMessage, since: datetime) -> str | None:
        """:meth:`find_sent_blocking` without blocking the event loop."""
        return await asyncio.to_thread(self.find_sent_blocking, message, since)

    def verify_blocking(self) -> None:
        """Check the credentials with the provider (raise ``ConfigError`` if refused).

        Network trouble raises :class:`TransientDeliveryError`. Default: nothing to check.
        """
        return None

    async def verify(self) -> None:
        """Check the credentials with the provider without blocking the event loop."""
        await asyncio.to_thread(self.verify_blocking)

    def close(self) -> None:
        """Release the provider's resources."""
        return None

    def describe(self) -> str:
        """A one-line description for start-up logs (never a secret)."""
        return f"{self.channel.value} via {self.name}"


def mask_recipient(recipient: str) -> str:
    """A phone number or push token shortened for logs and listings (``+44******0123``)."""
    if len(recipient) <= 6:
        return "*" * len(recipient)
    if recipient.startswith("+"):
        return recipient[:3] + "*" * (len(recipient) - 7) + recipient[-4:]
    return recipient[:4] + "..." + recipient[-4:]

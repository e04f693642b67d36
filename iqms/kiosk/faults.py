"""Telling reception about the printer: state changes go to the central database as events.

The kiosk hands every change of its printer's state to :class:`FaultReporter`;
it calls :func:`iqms.core.services.devices.report_printer`, which stores the
state on the device and publishes a ``printer_fault`` event (a fault, a
warning such as paper low, or "fine again") that the reception console shows.
While the database cannot be reached, only the latest state waits and is sent
by the next :meth:`FaultReporter.flush` (reception needs the current state,
not the history).
"""

from __future__ import annotations

import logging

from iqms.core.db import is_connection_error
from iqms.core.errors import DatabaseUnavailable, IQMSError
from iqms.core.service import Context
from iqms.core.services import devices
from iqms.kiosk.printer import PrinterStatus

log = logging.getLogger(__name__)


class FaultReporter:
    """Reports the printer's state changes for one device (its context's principal)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._sent: PrinterStatus | None = None
        self._pending: PrinterStatus | None = None

    @property
    def pending(self) -> PrinterStatus | None:
        """A state not yet delivered (the database was away)."""
        return self._pending

    async def report(self, status: PrinterStatus) -> bool:
        """Send ``status`` if it differs from the last one sent; True once it was published."""
        self._pending = status
        return await self.flush()

    async def flush(self) -> bool:
        status = self._pending
        if status is None:
            return False
        if status.same_as(self._sent):
            self._pending = None
            return False
        try:
            changed = await devices.report_printer(
                self.ctx, state=status.state, message=status.message
            )
        except Exception as exc:
            if isinstance(exc, DatabaseUnavailable) or is_connection_error(exc):
                log.info("printer state kept until the database is back: %s", status.message)
                return False
            if isinstance(exc, IQMSError):  # e.g. the device was revoked: nothing to retry
                log.warning("printer state not reported: %s", exc)
                self._pending = None
                return False
            raise
        self._sent = status
        self._pending = None
        return changed


__all__ = ["FaultReporter"]

"""Ticket printers: network (TCP 9100), USB, serial, a device file, or none (``dummy``).

python-escpos is imported here only, lazily, and kept quiet: it configures
logging at import (which would scribble over a full-screen kiosk) and makes a
temporary directory per process unless told where to cache its printer data.

A print job (:meth:`TicketPrinter.print_bytes`) connects, asks the printer
for its status (DLE EOT: online, cover, paper) where the connection can read,
sends the whole ticket in one write, asks again, and disconnects. Every step
has a share of one deadline (``IQMS_PRINTER_TIMEOUT_SECONDS``). Whatever goes
wrong becomes a :class:`PrinterStatus` with a :class:`~iqms.core.enums.PrinterState`
and a one-line message; nothing raises. :class:`PrintWorker` runs jobs in one
background thread so the screen never waits on the printer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import platformdirs

from iqms.core.config import PrinterKind, Settings
from iqms.core.enums import PrinterState
from iqms.core.errors import ConfigError
from iqms.kiosk.ticket import TicketSlip, render

if TYPE_CHECKING:
    from escpos.escpos import Escpos

log = logging.getLogger(__name__)

DLE_EOT = b"\x10\x04"
STATUS_PRINTER, STATUS_OFFLINE_CAUSE, STATUS_PAPER = 1, 2, 4
# Bits of the DLE EOT answers (ESC/POS): fixed bits, then what each one means.
_FIXED_MASK, _FIXED_BITS = 0x93, 0x12
_OFFLINE = 0x08
_COVER_OPEN = 0x04
_STOPPED_NO_PAPER = 0x20
_PAPER_NEAR_END = 0x0C
_PAPER_END = 0x60
#: How long after the job deadline the worker stops waiting for a stuck job.
WORKER_GRACE_SECONDS = 0.5


# ---- python-escpos, imported once and kept quiet -----------------------------------------------
_escpos: Any = None


def escpos_printers() -> Any:
    """The ``escpos.printer`` module (imported on first use, logging side effects undone)."""
    global _escpos
    if _escpos is None:
        cache = os.path.join(platformdirs.user_cache_dir("iqms", appauthor=False), "escpos")
        with contextlib.suppress(OSError):
            os.makedirs(cache, exist_ok=True)
            os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", cache)
        root = logging.getLogger()
        before = list(root.handlers)
        import escpos.printer

        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
        # escpos logs through the root logger, and a root logger without handlers would
        # be given a stderr handler on its first message: give it one that prints nothing.
        if not root.handlers:
            root.addHandler(logging.NullHandler())
        _escpos = escpos.printer
    return _escpos


# ---- configuration ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PrinterConfig:
    """Which printer, how to reach it, its profile, and how long a ticket may take."""

    kind: PrinterKind = PrinterKind.DUMMY
    host: str | None = None
    port: int = 9100
    usb_vendor: int | None = None
    usb_product: int | None = None
    device: str | None = None  # a device file (file) or a serial port (serial)
    baudrate: int = 9600
    profile: str = "TM-T88V"
    timeout: float = 5.0
    query_status: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, spec: str | None = None) -> PrinterConfig:
        """The printer of the ``IQMS_PRINTER_*`` settings, or of ``spec`` (``--printer``)."""
        config = cls(
            kind=settings.printer_kind,
            host=settings.printer_host,
            port=settings.printer_port,
            usb_vendor=settings.printer_usb_vendor,
            usb_product=settings.printer_usb_product,
            device=(
                str(settings.printer_file)
                if settings.printer_kind == PrinterKind.FILE and settings.printer_file
                else settings.printer_serial_device
            ),
            baudrate=settings.printer_baudrate,
            profile=settings.printer_profile,
            timeout=settings.printer_timeout_seconds,
            query_status=settings.printer_query_status,
        )
        setting = "IQMS_PRINTER_KIND"
        if spec:
            config, setting = parse_printer_spec(spec, config), "--printer"
        config.check(setting)
        return config

    def check(self, setting: str = "IQMS_PRINTER_KIND") -> None:
        """Raise ``ConfigError`` if this printer cannot be used as configured."""
        if self.kind == PrinterKind.NETWORK and not self.host:
            raise ConfigError(setting, "network printer needs IQMS_PRINTER_HOST (its address)")
        if self.kind == PrinterKind.USB and not (self.usb_vendor and self.usb_product):
            raise ConfigError(
                setting,
                "USB printer needs IQMS_PRINTER_USB_VENDOR and IQMS_PRINTER_USB_PRODUCT "
                "(hex ids, as 'lsusb' shows them)",
            )
        if self.kind in (PrinterKind.FILE, PrinterKind.SERIAL) and not self.device:
            what = (
                "IQMS_PRINTER_FILE"
                if self.kind == PrinterKind.FILE
                else "IQMS_PRINTER_SERIAL_DEVICE"
            )
            raise ConfigError(setting, f"{self.kind.value} printer needs {what}")
        try:
            from escpos.capabilities import get_profile

            escpos_printers()
            get_profile(self.profile)
        except KeyError:
            raise ConfigError(
                "IQMS_PRINTER_PROFILE",
                f"unknown printer profile {self.profile!r} (e.g. TM-T88V, TM-T20II, default)",
            ) from None

    @property
    def can_query(self) -> bool:
        """True when this connection can read the printer's status answers."""
        readable = self.kind in (PrinterKind.NETWORK, PrinterKind.USB, PrinterKind.SERIAL)
        return readable and self.query_status

    def describe(self) -> str:
        if self.kind == PrinterKind.NETWORK:
            return f"network printer {self.host}:{self.port}"
        if self.kind == PrinterKind.USB:
            return f"USB printer {self.usb_vendor or 0:04x}:{self.usb_product or 0:04x}"
        if self.kind == PrinterKind.SERIAL:
            return f"serial printer {self.device} ({self.baudrate} baud)"
        if self.kind == PrinterKind.FILE:
            return f"printer device {self.device}"
        return "no printer (tickets are shown on screen)"


def parse_printer_spec(spec: str, base: PrinterConfig | None = None) -> PrinterConfig:
    """A printer from one option value, e.g. ``network:192.168.1.50:9100``.

    Forms: ``network:HOST[:PORT]``, ``usb:VENDOR:PRODUCT`` (hex), ``serial:PORT[:BAUD]``,
    ``file:PATH``, ``dummy``. The profile and timeout of ``base`` are kept.
    """
    base = base or PrinterConfig()
    kind_text, _, rest = spec.strip().partition(":")
    try:
        kind = PrinterKind(kind_text.strip().lower())
    except ValueError:
        raise ConfigError(
            "--printer",
            f"unknown printer kind {kind_text!r}: use network:HOST[:PORT], usb:VENDOR:PRODUCT, "
            "serial:PORT[:BAUD], file:PATH or dummy",
        ) from None
    common = replace(base, kind=kind, host=None, usb_vendor=None, usb_product=None, device=None)
    try:
        if kind == PrinterKind.DUMMY:
            return common
        if kind == PrinterKind.NETWORK:
            host, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
            return replace(common, host=host or None, port=int(port) if port else 9100)
        if kind == PrinterKind.USB:
            vendor, _, product = rest.partition(":")
            return replace(common, usb_vendor=int(vendor, 16), usb_product=int(product, 16))
        if kind == PrinterKind.SERIAL:
            port, _, baud = rest.rpartition(":") if _has_baud(rest) else (rest, "", "")
            return replace(
                common, device=port or None, baudrate=int(baud) if baud else base.baudrate
            )
        return replace(common, device=rest or None)
    except ValueError:
        raise ConfigError("--printer", f"cannot read {spec!r} as a {kind.value} printer") from None


def _has_baud(rest: str) -> bool:
    head, sep, tail = rest.rpartition(":")
    return bool(sep and head and tail.isdigit())


# ---- status and results ----------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PrinterStatus:
    """The printer's state and a one-line message for people."""

    state: PrinterState
    message: str
    at: datetime

    @classmethod
    def of(cls, state: PrinterState, message: str | None = None) -> PrinterStatus:
        return cls(state, message or DEFAULT_MESSAGES[state], _now())

    @property
    def can_print(self) -> bool:
        return self.state.can_print

    @property
    def severity(self) -> str:
        return self.state.severity

    def same_as(self, other: PrinterStatus | None) -> bool:
        return other is not None and (self.state, self.message) == (other.state, other.message)


DEFAULT_MESSAGES = {
    PrinterState.READY: "printer ready",
    PrinterState.PAPER_LOW: "paper is running low: change the roll soon",
    PrinterState.PAPER_OUT: "the printer is out of paper",
    PrinterState.COVER_OPEN: "the printer cover is open",
    PrinterState.OFFLINE: "the printer is offline",
    PrinterState.UNREACHABLE: "the printer cannot be reached",
    PrinterState.TIMEOUT: "the printer did not answer in time",
    PrinterState.DISCONNECTED: "the connection to the printer dropped during a ticket",
    PrinterState.ERROR: "the printer reported an error",
    PrinterState.NO_PRINTER: "no printer: numbers are shown on screen",
}


@dataclass(frozen=True)
class PrintResult:
    """What became of one ticket: printed or not, the printer's state, the bytes of the job."""

    printed: bool
    status: PrinterStatus
    data: bytes
    seconds: float


class _NoAnswer(Exception):
    """The printer did not answer a status query in time."""


class _Closed(Exception):
    """The printer closed the connection."""


class _Failed(Exception):
    """A step failed; carries the status to report."""

    def __init__(self, status: PrinterStatus) -> None:
        super().__init__(status.message)
        self.status = status


# ---- one printer, one job at a time -----------------------------------------------------------
class TicketPrinter:
    """Prints tickets on one configured printer. Blocking: call it from a worker thread."""

    def __init__(self, config: PrinterConfig, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        #: for the dummy printer: the bytes of the last job (what a printer would have got)
        self.last_output: bytes = b""

    # -- rendering --
    def render(self, slip: TicketSlip) -> bytes:
        """The ESC/POS bytes of a ticket for this printer's profile."""
        dummy = escpos_printers().Dummy(profile=self.config.profile)
        render(dummy, slip, self.settings)
        return bytes(dummy.output)

    def warm_up(self) -> None:
        escpos_printers().Dummy(profile=self.config.profile)

    # -- jobs --
    def check(self) -> PrinterStatus:
        """Connect, ask for the status, disconnect."""
        if self.config.kind == PrinterKind.DUMMY:
            return PrinterStatus.of(PrinterState.NO_PRINTER)
        deadline = time.monotonic() + self.config.timeout
        try:
            printer = self._open(deadline)
        except _Failed as failed:
            return failed.status
        try:
            return self._status(printer, deadline)
        except _Failed as failed:
            return failed.status
        finally:
            self._close(printer)

    def print_ticket(self, slip: TicketSlip) -> PrintResult:
        return self.print_bytes(self.render(slip))

    def print_bytes(self, data: bytes) -> PrintResult:
        """Send one rendered ticket, checking the printer before and after."""
        started = time.monotonic()
        deadline = started + self.config.timeout

        def result(printed: bool, status: PrinterStatus) -> PrintResult:
            return PrintResult(printed, status, data, time.monotonic() - started)

        if self.config.kind == PrinterKind.DUMMY:
            self.last_output = data
            return result(False, PrinterStatus.of(PrinterState.NO_PRINTER))
        try:
            printer = self._open(deadline)
        except _Failed as failed:
            return result(False, failed.status)
        try:
            before = self._status(printer, deadline)
            if not before.can_print:
                return result(False, before)
            self._write(printer, data, deadline)
            try:
                after = self._status(printer, deadline)
            except _Failed as failed:
                raise _Failed(_during_ticket(failed.status)) from None
            if not after.can_print:
                # It ran out of paper, or was opened, during the ticket: not a whole ticket.
                return result(False, after)
            return result(True, after)
        except _Failed as failed:
            return result(False, failed.status)
        finally:
            self._close(printer)

    # -- connection --
    def _open(self, deadline: float) -> Escpos:
        cfg = self.config
        try:
            printers = escpos_printers()
            if cfg.kind == PrinterKind.NETWORK:
                printer = printers.Network(
                    cfg.host, port=cfg.port, timeout=_left(deadline), profile=cfg.profile
                )
            elif cfg.kind == PrinterKind.USB:
                printer = printers.Usb(
                    cfg.usb_vendor, cfg.usb_product,
                    timeout=int(cfg.timeout * 1000), profile=cfg.profile,
                )  # fmt: skip
            elif cfg.kind == PrinterKind.SERIAL:
                printer = printers.Serial(
                    cfg.device, baudrate=cfg.baudrate, timeout=_left(deadline),
                    profile=cfg.profile,
                )  # fmt: skip
            else:
                printer = printers.File(cfg.device, profile=cfg.profile)
            printer.open()
        except Exception as exc:
            raise _Failed(self._open_failure(exc)) from None
        return printer

    def _open_failure(self, exc: BaseException) -> PrinterStatus:
        cause = exc.__context__ or exc
        where = self.config.describe()
        if isinstance(cause, TimeoutError):
            return PrinterStatus.of(PrinterState.TIMEOUT, f"{where} did not answer (timed out)")
        if isinstance(cause, ConnectionRefusedError):
            return PrinterStatus.of(
                PrinterState.UNREACHABLE, f"{where} refused the connection (switched off?)"
            )
        name = type(cause).__name__
        if name == "NoBackendError":
            return PrinterStatus.of(
                PrinterState.ERROR, "USB printing needs libusb (apt-get install libusb-1.0-0)"
            )
        if isinstance(cause, RuntimeError) and "usb" in str(cause).lower():
            return PrinterStatus.of(PrinterState.ERROR, "USB printing needs pyusb")
        if isinstance(cause, OSError) and cause.strerror:
            return PrinterStatus.of(PrinterState.UNREACHABLE, f"{where}: {cause.strerror.lower()}")
        text = str(cause).strip().splitlines()
        detail = text[-1] if text else name
        return PrinterStatus.of(PrinterState.UNREACHABLE, f"{where} cannot be opened: {detail}")

    def _close(self, printer: Escpos) -> None:
        with contextlib.suppress(Exception):
            printer.close()

    def _set_timeout(self, printer: Escpos, deadline: float) -> None:
        left = _left(deadline)
        device = getattr(printer, "_device", None)
        if not device:
            return
        if self.config.kind == PrinterKind.NETWORK:
            device.settimeout(left)
        elif self.config.kind == PrinterKind.SERIAL:
            device.timeout = left
            device.write_timeout = left
        elif self.config.kind == PrinterKind.USB:
            printer.timeout = max(1, int(left * 1000))  # type: ignore[attr-defined]

    def _write(self, printer: Escpos, data: bytes, deadline: float) -> None:
        try:
            self._set_timeout(printer, deadline)
            printer._raw(data)
            if self.config.kind in (PrinterKind.SERIAL, PrinterKind.FILE):
                printer.device.flush()  # type: ignore[attr-defined]
        except Exception as exc:
            raise _Failed(self._io_failure(exc, "while printing")) from None

    def _io_failure(self, exc: BaseException, when: str) -> PrinterStatus:
        name = type(exc).__name__
        if isinstance(exc, TimeoutError) or name in ("USBTimeoutError", "SerialTimeoutException"):
            return PrinterStatus.of(
                PrinterState.TIMEOUT, f"the printer stopped answering {when} (timed out)"
            )
        if isinstance(exc, ConnectionError | _Closed) or name in ("USBError", "SerialException"):
            return PrinterStatus.of(
                PrinterState.DISCONNECTED, f"the connection to the printer dropped {when}"
            )
        return PrinterStatus.of(PrinterState.ERROR, f"printer error {when}: {exc}".strip())

    # -- status (DLE EOT) --
    def _ask(self, printer: Escpos, which: int, deadline: float) -> int:
        """Send DLE EOT ``which`` and return the answer byte."""
        self._set_timeout(printer, deadline)
        printer._raw(DLE_EOT + bytes([which]))
        try:
            if self.config.kind == PrinterKind.SERIAL:
                # One answer byte; reading 16 (as the library does) would wait out the timeout.
                answer = printer.device.read(1)  # type: ignore[attr-defined]
            else:
                answer = printer._read()
        except TimeoutError:
            raise _NoAnswer from None
        except Exception as exc:
            if type(exc).__name__ == "USBTimeoutError":
                raise _NoAnswer from None
            raise
        if not answer:
            if self.config.kind == PrinterKind.NETWORK:
                raise _Closed
            raise _NoAnswer
        return int(answer[-1])

    def _status(self, printer: Escpos, deadline: float) -> PrinterStatus:
        if not self.config.can_query:
            return PrinterStatus.of(PrinterState.READY, "printer ready (it does not report status)")
        try:
            online = self._ask(printer, STATUS_PRINTER, deadline)
            if not _valid(online):
                return PrinterStatus.of(
                    PrinterState.ERROR,
                    f"the printer gave an unexpected status answer ({online:#04x})",
                )
            paper = self._ask(printer, STATUS_PAPER, deadline)
            if _valid(paper) and paper & _PAPER_END == _PAPER_END:
                return PrinterStatus.of(PrinterState.PAPER_OUT)
            if online & _OFFLINE:
                cause = self._ask(printer, STATUS_OFFLINE_CAUSE, deadline)
                if _valid(cause) and cause & _COVER_OPEN:
                    return PrinterStatus.of(PrinterState.COVER_OPEN)
                if _valid(cause) and cause & _STOPPED_NO_PAPER:
                    return PrinterStatus.of(PrinterState.PAPER_OUT)
                return PrinterStatus.of(PrinterState.OFFLINE)
            if _valid(paper) and paper & _PAPER_NEAR_END == _PAPER_NEAR_END:
                return PrinterStatus.of(PrinterState.PAPER_LOW)
            return PrinterStatus.of(PrinterState.READY)
        except _NoAnswer:
            raise _Failed(
                PrinterStatus.of(
                    PrinterState.TIMEOUT,
                    "the printer did not answer a status query in time "
                    "(set IQMS_PRINTER_QUERY_STATUS=false if it never does)",
                )
            ) from None
        except Exception as exc:
            raise _Failed(self._io_failure(exc, "while checking its status")) from None


def _during_ticket(status: PrinterStatus) -> PrinterStatus:
    """A failure of the check after sending: the ticket itself may be cut short."""
    if status.state == PrinterState.DISCONNECTED:
        return PrinterStatus.of(PrinterState.DISCONNECTED)
    if status.state == PrinterState.TIMEOUT:
        return PrinterStatus.of(
            PrinterState.TIMEOUT, "the printer stopped answering during the ticket (timed out)"
        )
    return status


def _valid(answer: int) -> bool:
    return answer & _FIXED_MASK == _FIXED_BITS


def _left(deadline: float) -> float:
    return max(0.05, deadline - time.monotonic())


# ---- the worker the kiosk and reception use ----------------------------------------------------
StatusListener = Callable[[PrinterStatus], Any]


class PrintWorker:
    """Runs print jobs one at a time in a background thread, each with a deadline.

    ``await worker.print_ticket(slip)`` never blocks the event loop and always
    returns a :class:`PrintResult` (a job past its deadline counts as a timeout).
    Listeners hear every change of the printer's state.
    """

    def __init__(self, printer: TicketPrinter) -> None:
        self.printer = printer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iqms-printer")
        initial = (
            PrinterState.NO_PRINTER
            if printer.config.kind == PrinterKind.DUMMY
            else PrinterState.READY
        )
        self._status = PrinterStatus.of(
            initial, "printer not checked yet" if initial == PrinterState.READY else None
        )
        self._listeners: list[StatusListener] = []

    @classmethod
    def for_settings(cls, settings: Settings, spec: str | None = None) -> PrintWorker:
        """A worker for the configured printer (``spec``: a ``--printer`` override)."""
        return cls(TicketPrinter(PrinterConfig.from_settings(settings, spec), settings))

    @property
    def status(self) -> PrinterStatus:
        return self._status

    def add_listener(self, listener: StatusListener) -> Callable[[], None]:
        """Call ``listener(status)`` whenever the state changes; returns a remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _set(self, status: PrinterStatus) -> None:
        changed = not status.same_as(self._status)
        self._status = status
        if changed:
            for listener in list(self._listeners):
                try:
                    listener(status)
                except Exception:  # a broken listener must not stop printing
                    log.exception("printer status listener failed")

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, fn, *args)
        limit = self.printer.config.timeout + WORKER_GRACE_SECONDS
        return await asyncio.wait_for(asyncio.shield(future), limit)

    async def warm_up(self) -> None:
        """Load the printer library and its profile now, so the first ticket is not slow."""
        await asyncio.get_running_loop().run_in_executor(self._pool, self.printer.warm_up)

    async def render(self, slip: TicketSlip) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(None, self.printer.render, slip)

    async def print_ticket(self, slip: TicketSlip) -> PrintResult:
        """Print one ticket; returns what happened (never raises for printer trouble)."""
        return await self.print_bytes(await self.render(slip))

    async def print_bytes(self, data: bytes) -> PrintResult:
        """Print a rendered ticket again (e.g. a reprint of the last one)."""
        started = time.monotonic()
        try:
            result: PrintResult = await self._run(self.printer.print_bytes, data)
        except TimeoutError:
            result = PrintResult(
                False,
                PrinterStatus.of(
                    PrinterState.TIMEOUT, "the printer is too slow: the ticket timed out"
                ),
                data,
                time.monotonic() - started,
            )
        self._set(result.status)
        return result

    async def check(self) -> PrinterStatus:
        """Ask the printer for its state now."""
        try:
            status: PrinterStatus = await self._run(self.printer.check)
        except TimeoutError:
            status = PrinterStatus.of(PrinterState.TIMEOUT, "the printer did not answer in time")
        self._set(status)
        return status

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = [
    "PrintResult",
    "PrintWorker",
    "PrinterConfig",
    "PrinterStatus",
    "TicketPrinter",
    "escpos_printers",
    "parse_printer_spec",
]

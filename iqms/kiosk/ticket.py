"""The printed ticket: what is on it (:class:`TicketSlip`) and its ESC/POS bytes (:func:`render`).

Layout, top to bottom: clinic name; "your number" and the number in the
largest size that fits the paper; department (and room, when the ticket is
reserved for a doctor); date and time; people ahead and the estimated wait
range (or "unavailable" for a ticket issued offline); a native QR code (the
ticket's status page when a public URL is configured, else the number); one
instruction line in the patient's language; then a cut.

Text goes out in one code page the printer has (CP858 where it can: Western
European letters and the euro sign), chosen up front, so accented letters
print as such instead of the library switching code pages per character.
Anything that page lacks is transliterated (``—`` -> ``-``, ``ő`` -> ``o``).
"""

from __future__ import annotations

import codecs
import math
import textwrap
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from iqms.core.config import Settings
from iqms.core.schemas.queue import TicketOut
from iqms.core.sync.journal import OfflineTicket
from iqms.kiosk.texts import ahead_text, t

if TYPE_CHECKING:
    from escpos.escpos import Escpos

#: Code pages for Latin-script text, best first (names as printer profiles spell them).
LATIN_CODE_PAGES = ("CP858", "CP850", "CP1252", "ISO_8859-15", "CP437")
QR_DOT_SIZE = 6
_REPLACEMENTS = {
    "—": "-", "–": "-", "‐": "-", "−": "-", "‘": "'", "’": "'", "‚": ",", "“": '"',
    "”": '"', "„": '"', "…": "...", "\u00a0": " ", "•": "*", "€": "EUR", "Ł": "L", "ł": "l",
    "Đ": "D", "đ": "d", "Œ": "OE", "œ": "oe",
}  # fmt: skip


@dataclass(frozen=True)
class TicketSlip:
    """Everything printed on one ticket (no patient name: a ticket can be left behind)."""

    clinic: str
    number: str
    department: str
    issued_at: datetime
    language: str = "en"
    room: str | None = None
    ahead: int | None = None
    wait_minutes: tuple[float, float] | None = None  # median and 90% bound
    link: str | None = None  # the ticket's status page
    offline: bool = False

    @property
    def qr_payload(self) -> str:
        return self.link or self.number

    @classmethod
    def for_ticket(
        cls,
        settings: Settings,
        ticket: TicketOut,
        *,
        department: str,
        language: str | None = None,
        room: str | None = None,
    ) -> TicketSlip:
        """The slip of a ticket issued by the central database."""
        estimate = ticket.estimate
        return cls(
            clinic=settings.clinic_name,
            number=ticket.ticket_number,
            department=department,
            issued_at=ticket.arrived_at,
            language=language or "en",
            room=room,
            ahead=(ticket.position - 1) if ticket.position is not None else None,
            wait_minutes=(estimate.p50_minutes, estimate.p90_minutes) if estimate else None,
            link=ticket.status_url,
        )

    @classmethod
    def for_offline(
        cls, settings: Settings, ticket: OfflineTicket, *, language: str | None = None
    ) -> TicketSlip:
        """The slip of a ticket issued from the reserved numbers while the database was away.

        Its status link (when the kiosk gave it a status code) works once the ticket synced.
        """
        return cls(
            clinic=settings.clinic_name,
            number=ticket.ticket_number,
            department=ticket.department_name,
            issued_at=ticket.arrived_at,
            language=language or "en",
            link=settings.ticket_status_url(ticket.status_code),
            offline=True,
        )

    # ---- the lines, in the patient's language ----------------------------------------------
    def wait_line(self) -> str:
        if self.offline or self.wait_minutes is None:
            return t(self.language, "ticket.wait.unavailable")
        p50, p90 = self.wait_minutes
        high = max(0, math.ceil(p90))
        if high < 5:
            return t(self.language, "ticket.wait.short")
        low = min(max(0, round(p50)), high)
        return t(self.language, "ticket.wait", low=low, high=high)

    def ahead_line(self) -> str | None:
        return None if self.ahead is None else ahead_text(self.language, self.ahead)

    def when_line(self, settings: Settings) -> str:
        return self.issued_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")


# ---- text for the printer's code page ---------------------------------------------------------
def python_codec(encoding: str) -> str | None:
    """The Python codec of a printer code page name (``ISO_8859-15`` -> ``iso8859_15``)."""
    name = encoding.lower().replace("iso_8859-", "iso8859_").replace("-", "_")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def choose_code_page(available: dict[str, Any]) -> str:
    """The code page to print in: the first of :data:`LATIN_CODE_PAGES` the printer has."""
    for name in LATIN_CODE_PAGES:
        if name in available and python_codec(name):
            return name
    for name in available:
        if python_codec(name):
            return name
    raise ValueError("the printer profile lists no code page this computer can encode")


def printable(text: str, encoding: str) -> str:
    """``text`` with every character the code page lacks replaced by its nearest equivalent."""
    codec = python_codec(encoding) or "ascii"
    out = []
    for ch in text:
        if _encodable(ch, codec):
            out.append(ch)
            continue
        swap = _REPLACEMENTS.get(ch)
        if swap is not None and all(_encodable(c, codec) for c in swap):
            out.append(swap)
            continue
        plain = "".join(
            c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)
        )
        out.append(plain if plain and all(_encodable(c, codec) for c in plain) else "?")
    return "".join(out)


def _encodable(ch: str, codec: str) -> bool:
    try:
        ch.encode(codec)
    except UnicodeEncodeError:
        return False
    return ch.isprintable() or ch in "\n"


# ---- ESC/POS ----------------------------------------------------------------------------------
def render(printer: Escpos, slip: TicketSlip, settings: Settings) -> None:
    """Write the ticket's ESC/POS commands to ``printer`` (any python-escpos printer)."""
    encoding = choose_code_page(printer.profile.get_code_pages())
    columns = printer.profile.get_columns("a")

    def line(text: str, *, wrap: int | None = None) -> None:
        clean = printable(text, encoding)
        for part in textwrap.wrap(clean, wrap or columns) or [""]:
            printer.textln(part)

    printer.hw("INIT")
    printer.magic.force_encoding(encoding)
    printer.set(align="center", bold=True, double_height=True)
    line(slip.clinic)
    printer.set(normal_textsize=True, bold=False)
    if slip.offline:
        printer.set(invert=True)
        line(f" {t(slip.language, 'ticket.offline')} ")
        printer.set(invert=False)
    printer.ln()
    line(t(slip.language, "ticket.your_number"))
    size = max(1, min(8, columns // max(1, len(slip.number))))
    printer.set(bold=True, custom_size=True, width=size, height=size)
    line(slip.number, wrap=max(1, columns // size))
    printer.set(normal_textsize=True, bold=True, double_height=True)
    line(slip.department)
    printer.set(normal_textsize=True, bold=False)
    if slip.room:
        printer.set(bold=True)
        line(slip.room)
        printer.set(bold=False)
    line(slip.when_line(settings))
    printer.ln()
    ahead = slip.ahead_line()
    if ahead:
        line(ahead)
    line(slip.wait_line())
    printer.ln()
    printer.qr(slip.qr_payload, native=True, size=QR_DOT_SIZE)
    if slip.link:
        line(t(slip.language, "ticket.scan"))
    printer.ln()
    line(t(slip.language, "ticket.instruction"))
    printer.cut()


__all__ = ["LATIN_CODE_PAGES", "TicketSlip", "choose_code_page", "printable", "render"]

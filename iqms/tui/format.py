"""How the consoles write times, waits, estimates and triage categories (no widgets here)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import lru_cache

from rich.text import Text

from iqms.core.enums import DEFAULT_TRIAGE_TARGET_MINUTES, TicketStatus, TriageCategory
from iqms.core.schemas.queue import Estimate

#: background and text colour of each triage category's tag (Manchester colours)
TRIAGE_STYLES = {
    TriageCategory.IMMEDIATE: "bold white on #d70000",
    TriageCategory.VERY_URGENT: "bold black on #ff8700",
    TriageCategory.URGENT: "bold black on #ffd700",
    TriageCategory.STANDARD: "bold black on #5fd75f",
    TriageCategory.NON_URGENT: "bold white on #005fd7",
}
#: style of the remaining time to a ticket's due time: fine, close, overdue
DUE_STYLES = {"ok": "", "soon": "bold #ffaf00", "overdue": "bold #ff5f5f"}
#: "close to due" once this share of the target wait is used up (or 5 minutes left)
SOON_SHARE = 0.75
SOON_MINUTES = 5

STATUS_WORDS = {
    TicketStatus.WAITING: "waiting",
    TicketStatus.HELD: "on hold",
    TicketStatus.CALLED: "called",
    TicketStatus.IN_SERVICE: "in service",
    TicketStatus.SERVED: "served",
    TicketStatus.NO_SHOW: "no-show",
    TicketStatus.CANCELLED: "cancelled",
    TicketStatus.TRANSFERRED: "transferred",
}


def minutes(value: float) -> str:
    """``7 min``, ``1 h 05``: a duration in whole minutes as people say it."""
    total = max(0, round(value))
    if total < 60:
        return f"{total} min"
    return f"{total // 60} h {total % 60:02d}"


def clock_time(when: datetime | None, tz: tzinfo, fmt: str = "%H:%M") -> str:
    """A stored time as the clinic's local time (``""`` for none)."""
    return when.astimezone(tz).strftime(fmt) if when is not None else ""


def waited(now: datetime, arrived: datetime) -> str:
    return minutes((now - arrived).total_seconds() / 60)


def due_state(now: datetime, arrived: datetime, due: datetime) -> str:
    """``ok``, ``soon`` (most of the target wait used) or ``overdue`` (past the due time)."""
    left = (due - now).total_seconds() / 60
    if left < 0:
        return "overdue"
    target = max((due - arrived).total_seconds() / 60, 0.0)
    used = 1.0 if target <= 0 else 1 - left / target
    if left <= SOON_MINUTES or used >= SOON_SHARE:
        return "soon"
    return "ok"


def due_text(now: datetime, arrived: datetime, due: datetime) -> Text:
    """``in 25 min`` / ``12 min over``, coloured by :func:`due_state`."""
    state = due_state(now, arrived, due)
    left = (due - now).total_seconds() / 60
    words = f"{minutes(-left)} over" if state == "overdue" else f"in {minutes(left)}"
    return Text(words, style=DUE_STYLES[state])


def estimate_text(estimate: Estimate | None) -> str:
    """``~15 min`` with the 90% bound: ``~15 min (≤25)``; blank without an estimate."""
    if estimate is None:
        return ""
    return f"~{minutes(estimate.p50_minutes)} (≤{round(estimate.p90_minutes)})"


def triage_label(category: int) -> str:
    return f"{int(category)} {TriageCategory(int(category)).label}"


#: width of the longest tag (`` 2 Very urgent ``), so tags in a list line up
TAG_WIDTH = max(len(f" {triage_label(c)} ") for c in TriageCategory)


def triage_text(category: int, *, short: bool = False, width: int = 0) -> Text:
    """The coloured tag of a triage category: `` 3 Urgent `` (or `` 3 `` when short).

    ``width`` pads the tag (e.g. :data:`TAG_WIDTH`) so a column of tags lines up.
    """
    return _tag(int(category), short, width).copy()


@lru_cache(maxsize=64)
def _tag(category: int, short: bool, width: int) -> Text:
    cat = TriageCategory(category)
    label = f" {int(cat)} " if short else f" {triage_label(cat)} "
    return Text(label.ljust(width), style=TRIAGE_STYLES[cat])


def target_text(category: int, targets: dict[int, int] | None = None) -> str:
    """``within 60 min`` / ``immediately``: the category's target wait."""
    value = (targets or {}).get(
        int(category), DEFAULT_TRIAGE_TARGET_MINUTES[TriageCategory(int(category))]
    )
    return "immediately" if value == 0 else f"within {minutes(value)}"


def status_word(status: TicketStatus | str) -> str:
    try:
        return STATUS_WORDS[TicketStatus(status)]
    except ValueError:
        return str(status)


__all__ = [
    "DUE_STYLES",
    "TAG_WIDTH",
    "TRIAGE_STYLES",
    "clock_time",
    "due_state",
    "due_text",
    "estimate_text",
    "minutes",
    "status_word",
    "target_text",
    "triage_label",
    "triage_text",
    "waited",
]

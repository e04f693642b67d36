"""The queue policy as plain functions: triage targets, due times, and the ticket state machine.

Nothing here touches the database; the engine and the services apply it.

Ordering of waiting tickets (done by the database, see :mod:`iqms.core.queue.engine`):
``queue_band`` (0 for category 1, so it is always first), then ``due_at``
(arrival + the category's target wait; appointments are due at their time),
then ``arrived_at`` (FIFO among equals), then the daily ``sequence``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from iqms.core.enums import DEFAULT_TRIAGE_TARGET_MINUTES, TicketStatus, TriageCategory
from iqms.core.errors import InvalidTransition, ValidationError

MAX_TARGET_MINUTES = 24 * 60


def parse_category(value: int | str | TriageCategory) -> TriageCategory:
    """A triage category from 1..5 (or its name, e.g. ``urgent``); ValidationError otherwise."""
    if isinstance(value, TriageCategory):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            value = int(text)
        else:
            key = text.upper().replace(" ", "_").replace("-", "_")
            try:
                return TriageCategory[key]
            except KeyError:
                raise ValidationError(
                    f"triage category {value!r} is not one of 1-5 or "
                    + ", ".join(c.name.lower().replace("_", "-") for c in TriageCategory),
                    field="triage_category",
                ) from None
    try:
        return TriageCategory(int(value))
    except (ValueError, TypeError):
        raise ValidationError(
            f"triage category must be 1 (immediate) to 5 (non-urgent), not {value!r}",
            field="triage_category",
        ) from None


def normalise_targets(overrides: Mapping[Any, Any] | None) -> dict[str, int]:
    """Validated per-department overrides as stored: ``{"2": 15, ...}``."""
    clean: dict[str, int] = {}
    for key, minutes in (overrides or {}).items():
        category = parse_category(key)
        try:
            value = int(minutes)
        except (TypeError, ValueError):
            raise ValidationError(
                f"target wait for category {int(category)} must be a whole number of minutes",
                field="triage_targets",
            ) from None
        if not 0 <= value <= MAX_TARGET_MINUTES:
            raise ValidationError(
                f"target wait for category {int(category)} must be 0-{MAX_TARGET_MINUTES} minutes",
                field="triage_targets",
            )
        clean[str(int(category))] = value
    return clean


def targets(overrides: Mapping[str, Any] | None) -> dict[TriageCategory, int]:
    """The target maximum wait (minutes) of every category, with a department's overrides."""
    merged = dict(DEFAULT_TRIAGE_TARGET_MINUTES)
    for key, minutes in (overrides or {}).items():
        try:
            merged[TriageCategory(int(key))] = int(minutes)
        except (ValueError, TypeError):
            continue  # a bad stored override never blocks the queue; the default applies
    return merged


def target_minutes(category: int, overrides: Mapping[str, Any] | None = None) -> int:
    return targets(overrides)[TriageCategory(int(category))]


def queue_band(category: int) -> int:
    """0 for category 1 (always first), 1 for every other category."""
    return 0 if int(category) == TriageCategory.IMMEDIATE else 1


def due_time(
    arrived_at: datetime,
    category: int,
    overrides: Mapping[str, Any] | None = None,
    *,
    appointment_at: datetime | None = None,
) -> datetime:
    """When the ticket should be seen: the appointment time, else arrival + target wait."""
    if appointment_at is not None and int(category) != TriageCategory.IMMEDIATE:
        return appointment_at
    return arrived_at + timedelta(minutes=target_minutes(category, overrides))


# ---- the ticket state machine ------------------------------------------------------------------
W, H, C, IS = (
    TicketStatus.WAITING,
    TicketStatus.HELD,
    TicketStatus.CALLED,
    TicketStatus.IN_SERVICE,
)


@dataclass(frozen=True)
class Move:
    """One operation: the states it may start from and the state it leads to."""

    verb: str  # what the user asked, for messages ("mark {n} as served"; n = the ticket)
    sources: frozenset[TicketStatus]
    target: TicketStatus


TRANSITIONS: dict[str, Move] = {
    "call": Move("call {n}", frozenset({W}), C),
    "recall": Move("recall {n}", frozenset({C}), C),
    "start": Move("start service for {n}", frozenset({C}), IS),
    # From called too: "done" without "start" records the start at the same moment.
    "serve": Move("mark {n} as served", frozenset({C, IS}), TicketStatus.SERVED),
    "no_show": Move("mark {n} as a no-show", frozenset({C}), TicketStatus.NO_SHOW),
    "requeue": Move("put {n} back in the queue", frozenset({C}), W),
    "cancel": Move("cancel {n}", frozenset({W, H}), TicketStatus.CANCELLED),
    # From in service too: a doctor refers the patient in the room to another queue.
    "transfer": Move("transfer {n}", frozenset({W, H, C, IS}), TicketStatus.TRANSFERRED),
    # From in service too: a patient sent for a test, to be seen again on return.
    "hold": Move("put {n} on hold", frozenset({W, C, IS}), H),
    "return": Move("return {n} to the queue", frozenset({H}), W),
    "change_category": Move("change the category of {n}", frozenset({W, H}), W),
}

_STATUS_WORDS = {
    W: "waiting",
    H: "on hold",
    C: "called",
    IS: "in service",
    TicketStatus.SERVED: "served",
    TicketStatus.NO_SHOW: "a no-show",
    TicketStatus.CANCELLED: "cancelled",
    TicketStatus.TRANSFERRED: "transferred",
}
_ORDER = [W, H, C, IS]


def describe_status(status: TicketStatus) -> str:
    return _STATUS_WORDS.get(status, status.value)


def check_transition(action: str, status: TicketStatus, ticket_number: str) -> TicketStatus:
    """The state ``action`` leads to from ``status``; InvalidTransition if not allowed."""
    move = TRANSITIONS[action]
    if status not in move.sources:
        allowed = " or ".join(describe_status(s) for s in _ORDER if s in move.sources)
        raise InvalidTransition(
            f"cannot {move.verb.format(n=ticket_number)}: it is {describe_status(status)}, "
            f"not {allowed}",
            ticket=ticket_number,
            status=status.value,
            action=action,
        )
    if action == "change_category":
        return status  # the category changes, the state stays
    return move.target


def allowed_actions(status: TicketStatus) -> list[str]:
    """The operations a ticket in ``status`` can undergo (for menus and help)."""
    return [name for name, move in TRANSITIONS.items() if status in move.sources]


__all__ = [
    "TRANSITIONS",
    "Move",
    "allowed_actions",
    "check_transition",
    "describe_status",
    "due_time",
    "normalise_targets",
    "parse_category",
    "queue_band",
    "target_minutes",
    "targets",
]

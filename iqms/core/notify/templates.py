"""Patient message templates: short plain text, no clinical detail, one per language.

A message says only what a patient needs to act on: the clinic's name, the
ticket number, the department, the room and the wait. The text is chosen by
the patient's language (``es-MX`` falls back to ``es``, anything unknown to
English). SMS bodies are kept within two segments: characters outside the GSM
alphabet that have a plain equivalent are replaced (``á`` -> ``a``), and long
clinic or department names are shortened until the message fits.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from iqms.core.enums import NotifyChannel

DEFAULT_LANGUAGE = "en"
MAX_SMS_SEGMENTS = 2

# Message kinds. "issued" is assembled from parts: the estimated wait (if known),
# then either "we will tell you when your turn is near" or, when few tickets are
# ahead already, "please stay in the waiting area".
KINDS = (
    "issued",
    "approaching",
    "called",
    "recalled",
    "no_show",
    "transferred",
    "test",
    "login_code",
)

TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "issued": "{clinic}: your ticket is {ticket} for {department}. {wait_part}{next_part}",
        "issued.wait": "Estimated wait about {wait} min. ",
        "issued.later": "We will let you know when your turn is near.",
        "issued.soon": "Your turn is near: please stay in the waiting area.",
        "approaching": "{clinic}: ticket {ticket}, your turn is near ({ahead} ahead of you). "
        "Please come back to the waiting area.",
        "called": "{clinic}: ticket {ticket}, please go to {room} now.",
        "recalled": "{clinic}: ticket {ticket}, we are calling you again. Please go to {room} now.",
        "no_show": "{clinic}: ticket {ticket} was called but we could not find you. "
        "Please see reception.",
        "transferred": "{clinic}: ticket {ticket} has moved to {department}. "
        "Your new ticket is {new_ticket}.",
        "test": "{clinic}: this is a test message from the queue system. No reply needed.",
        "login_code": "{clinic}: your login code is {code}. It expires in {minutes} min. "
        "Do not share it; staff never ask for it.",
    },
    "es": {
        "issued": "{clinic}: su turno es {ticket} para {department}. {wait_part}{next_part}",
        "issued.wait": "Espera estimada: {wait} min. ",
        "issued.later": "Le avisaremos cuando se acerque su turno.",
        "issued.soon": "Ya casi le toca: quédese en la sala de espera.",
        "approaching": "{clinic}: turno {ticket}, ya casi le toca ({ahead} por delante). "
        "Vuelva a la sala de espera, por favor.",
        "called": "{clinic}: turno {ticket}, pase ahora a {room}, por favor.",
        "recalled": "{clinic}: turno {ticket}, le llamamos de nuevo. "
        "Pase ahora a {room}, por favor.",
        "no_show": "{clinic}: llamamos al turno {ticket} y no le encontramos. "
        "Acuda a recepción, por favor.",
        "transferred": "{clinic}: el turno {ticket} pasa a {department}. "
        "Su nuevo turno es {new_ticket}.",
        "test": "{clinic}: este es un mensaje de prueba del sistema de turnos. "
        "No hace falta responder.",
        "login_code": "{clinic}: su código de acceso es {code}. Caduca en {minutes} min. "
        "No lo comparta; el personal nunca se lo pedirá.",
    },
}

LANGUAGES = tuple(sorted(TEMPLATES))

# The GSM 03.38 alphabet (one septet each) and its extension table (two septets each).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")

# Characters outside GSM with a close GSM equivalent (what carriers' "smart encoding" does).
_GSM_REPLACEMENTS = {
    "‘": "'",
    "’": "'",
    "‚": "'",
    "“": '"',
    "”": '"',
    "„": '"',
    "–": "-",
    "—": "-",
    "…": "...",
    "\u00a0": " ",
    "\t": " ",
    "•": "-",
    "«": '"',
    "»": '"',
}

# Shortening steps for SMS: (clinic, department) maximum characters (0: leave the
# clinic out), and whether characters outside GSM are removed from those names.
_SHORTENING: tuple[tuple[int | None, int | None, bool], ...] = (
    (None, None, False),
    (40, 30, False),
    (24, 20, False),
    (16, 14, False),
    (10, 10, False),
    (0, 10, False),
    (0, 10, True),
    (0, 6, True),
)


@dataclass(frozen=True)
class RenderedMessage:
    """A message ready for the outbox."""

    kind: str
    language: str
    title: str
    body: str


def pick_language(language: str | None) -> str:
    """The template language for a patient's preference (``es-MX`` -> ``es``; unknown -> en)."""
    if not language:
        return DEFAULT_LANGUAGE
    code = language.strip().lower().replace("_", "-")
    if code in TEMPLATES:
        return code
    base = code.split("-", 1)[0]
    return base if base in TEMPLATES else DEFAULT_LANGUAGE


def is_gsm(text: str) -> bool:
    """True when every character is in the GSM 7-bit alphabet (basic or extension)."""
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def to_gsm(text: str) -> str:
    """Replace characters outside GSM by close equivalents where one exists (``á`` -> ``a``).

    Characters without an equivalent (e.g. CJK, emoji) are kept; the message
    is then sent as UCS-2, which the segment count accounts for.
    """
    out: list[str] = []
    for ch in text:
        if ch in GSM_BASIC or ch in GSM_EXTENSION:
            out.append(ch)
            continue
        if ch in _GSM_REPLACEMENTS:
            out.append(_GSM_REPLACEMENTS[ch])
            continue
        stripped = "".join(
            c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c)
        )
        if stripped and all(c in GSM_BASIC for c in stripped):
            out.append(stripped)
        else:
            out.append(ch)
    return "".join(out)


def sms_segments(text: str) -> int:
    """How many SMS segments ``text`` needs (GSM-7: 160 / 153 per part; UCS-2: 70 / 67)."""
    if is_gsm(text):
        units = sum(2 if ch in GSM_EXTENSION else 1 for ch in text)
        single, multi = 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if units <= single:
        return 1
    return -(-units // multi)


def _shorten(value: str, limit: int | None) -> str:
    value = " ".join(value.split())
    if limit is None or len(value) <= limit:
        return value
    if limit == 0:
        return ""
    return value[: max(limit - 1, 1)].rstrip() + "."


def _gsm_only(value: str) -> str:
    return "".join(ch for ch in to_gsm(value) if ch in GSM_BASIC).strip() or "-"


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


def render(
    kind: str,
    *,
    language: str | None,
    clinic: str,
    channel: NotifyChannel,
    fields: Mapping[str, Any],
) -> RenderedMessage:
    """Render one message; SMS bodies are made to fit in two segments.

    ``fields``: ``ticket`` always; ``department`` (issued, transferred), ``wait``
    (issued, optional: see :func:`wait_text`), ``near`` (issued: few tickets
    ahead already), ``ahead`` (approaching), ``room`` (called, recalled),
    ``new_ticket`` (transferred), ``code`` and ``minutes`` (login_code).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    lang = pick_language(language)
    template = TEMPLATES[lang][kind]
    values = {key: _one_line(value) for key, value in fields.items()}
    if kind == "issued":
        texts = TEMPLATES[lang]
        wait = values.get("wait", "")
        values["wait_part"] = texts["issued.wait"].format(wait=wait) if wait else ""
        values["next_part"] = texts["issued.soon" if fields.get("near") else "issued.later"]
    clinic = _one_line(clinic)
    department = values.get("department", "")
    if channel != NotifyChannel.SMS:
        body = template.format_map({**values, "clinic": clinic, "department": department})
        return RenderedMessage(kind=kind, language=lang, title=clinic, body=body)
    body = ""
    for clinic_max, department_max, gsm_only in _SHORTENING:
        names = {
            "clinic": _shorten(clinic, clinic_max),
            "department": _shorten(department, department_max),
        }
        if gsm_only:
            names = {key: _gsm_only(value) for key, value in names.items()}
        text = template.removeprefix("{clinic}: ") if clinic_max == 0 else template
        body = to_gsm(text.format_map({**values, **names}))
        if sms_segments(body) <= MAX_SMS_SEGMENTS:
            break
    return RenderedMessage(kind=kind, language=lang, title=clinic, body=body)


def wait_text(p50_minutes: float, p90_minutes: float | None = None) -> str:
    """A wait as patients read it: ``15`` or a range ``15-25`` (whole minutes, at least 1)."""
    low = max(1, round(p50_minutes))
    if p90_minutes is None:
        return str(low)
    high = max(low, round(p90_minutes))
    return str(low) if high == low else f"{low}-{high}"

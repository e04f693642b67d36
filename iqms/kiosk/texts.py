"""What the kiosk says and prints, in every language the patient messages have.

Keys are shared by all languages (a test checks that each language has every
key, and that every language of the message templates is here). Texts are
short: a patient reads them standing, often without glasses.
"""

from __future__ import annotations

from iqms.core.notify.templates import DEFAULT_LANGUAGE, pick_language

LANGUAGE_NAMES = {"en": "English", "es": "Español"}

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        # the printed ticket
        "ticket.your_number": "Your number",
        "ticket.ahead.none": "You are next",
        "ticket.ahead.one": "1 person ahead of you",
        "ticket.ahead.many": "{n} people ahead of you",
        "ticket.wait": "Estimated wait: {low}-{high} min",
        "ticket.wait.short": "Estimated wait: under 5 min",
        "ticket.wait.unavailable": "Estimated wait: unavailable",
        "ticket.offline": "ISSUED OFFLINE",
        "ticket.scan": "Scan to follow your place in the queue",
        "ticket.instruction": "Please wait until your number is shown on the screen.",
    },
    "es": {
        "ticket.your_number": "Su número",
        "ticket.ahead.none": "Usted es el siguiente",
        "ticket.ahead.one": "1 persona delante de usted",
        "ticket.ahead.many": "{n} personas delante de usted",
        "ticket.wait": "Espera estimada: {low}-{high} min",
        "ticket.wait.short": "Espera estimada: menos de 5 min",
        "ticket.wait.unavailable": "Espera estimada: no disponible",
        "ticket.offline": "EMITIDO SIN CONEXIÓN",
        "ticket.scan": "Escanee para seguir su turno",
        "ticket.instruction": "Espere, por favor, hasta que su número aparezca en la pantalla.",
    },
}

LANGUAGES = tuple(TEXTS)


def t(language: str | None, key: str, **values: object) -> str:
    """The text ``key`` in ``language`` (``es-MX`` -> ``es``; unknown -> English)."""
    lang = pick_language(language)
    table = TEXTS.get(lang, TEXTS[DEFAULT_LANGUAGE])
    template = table.get(key) or TEXTS[DEFAULT_LANGUAGE][key]
    return template.format(**values) if values else template


def ahead_text(language: str | None, ahead: int) -> str:
    if ahead <= 0:
        return t(language, "ticket.ahead.none")
    if ahead == 1:
        return t(language, "ticket.ahead.one")
    return t(language, "ticket.ahead.many", n=ahead)


__all__ = ["LANGUAGES", "LANGUAGE_NAMES", "TEXTS", "ahead_text", "t"]

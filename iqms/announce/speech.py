"""What a board says when it calls a ticket, and saying it offline with espeak-ng.

"Ticket A 12, room 3": the letters of the ticket prefix are spelled (said as
letters, not as the word "a"), the number is read as a number without its
leading zeros, and a room that is only a number gets the language's word for
room. The words come from :data:`LANGUAGES`, the voice from the clinic's
language (``IQMS_CLINIC_LANGUAGE``, e.g. ``es`` or ``pt-br``).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from iqms.announce.process import CommandProblem, run_quietly

ESPEAK = "espeak-ng"
#: words per minute: a little slower than espeak-ng's default, for a large room
SPEECH_RATE_WPM = 150
SPEECH_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Phrase:
    """The words of a call in one language: "<ticket> A 12, <room> 3"."""

    ticket: str
    room: str


#: the languages a board can speak calls in (by primary language subtag)
LANGUAGES: dict[str, Phrase] = {
    "en": Phrase("Ticket", "room"),
    "es": Phrase("Turno", "consulta"),
    "fr": Phrase("Numéro", "salle"),
    "de": Phrase("Nummer", "Raum"),
    "it": Phrase("Numero", "ambulatorio"),
    "pt": Phrase("Senha", "sala"),
    "nl": Phrase("Nummer", "kamer"),
}

_TICKET = re.compile(r"^([A-Za-z]{1,3})-?0*(\d+)$")
_ROOM_NUMBER = re.compile(r"^(\d+)\s*([A-Za-z]?)$")


class SpeechError(Exception):
    """espeak-ng could not say the call (missing, unknown voice, failed)."""


def phrase_for(language: str) -> Phrase:
    """The words for ``language`` (``pt-br`` uses ``pt``); ``ValueError`` if unknown."""
    primary = language.lower().split("-", 1)[0]
    try:
        return LANGUAGES[primary]
    except KeyError:
        known = ", ".join(sorted(LANGUAGES))
        raise ValueError(
            f"calls cannot be spoken in {language!r} yet (languages: {known})"
        ) from None


# A part of the call: its text and whether it is spelled letter by letter.
Part = tuple[str, bool]


def call_parts(ticket_number: str, room: str | None, language: str) -> list[Part]:
    """The call as parts: words, and letters to spell."""
    phrase = phrase_for(language)
    parts: list[Part] = [(phrase.ticket, False)]
    match = _TICKET.match(ticket_number.strip())
    if match:
        parts += [(match.group(1).upper(), True), (str(int(match.group(2))), False)]
    else:
        parts.append((ticket_number.strip(), True))
    if room and room.strip():
        room = room.strip()
        number = _ROOM_NUMBER.match(room)
        if number:  # "3" -> "room 3"; "3b" -> "room 3 B"
            parts[-1] = (parts[-1][0] + ",", parts[-1][1])
            parts += [(phrase.room, False), (number.group(1), False)]
            if number.group(2):
                parts.append((number.group(2).upper(), True))
        else:  # a name the clinic gave the room ("Room 3", "Triage"): said as written
            parts[-1] = (parts[-1][0] + ",", parts[-1][1])
            parts.append((room, False))
    return parts


def call_text(ticket_number: str, room: str | None, language: str = "en") -> str:
    """The call as plain text: ``Ticket A 12, room 3``."""
    return " ".join(text for text, _ in call_parts(ticket_number, room, language))


def call_ssml(ticket_number: str, room: str | None, language: str = "en") -> str:
    """The call as the SSML espeak-ng reads, with the letters marked to be spelled."""
    out = []
    for text, spell in call_parts(ticket_number, room, language):
        comma = text.endswith(",")
        word = escape(text.rstrip(",") if comma else text)
        if spell:
            word = f'<say-as interpret-as="characters">{word}</say-as>'
        out.append(word + ("," if comma else ""))
    return "<speak>" + " ".join(out) + "</speak>"


async def speak_wav(
    ticket_number: str,
    room: str | None,
    *,
    language: str = "en",
    voice: str | None = None,
    espeak: str = ESPEAK,
    rate_wpm: int = SPEECH_RATE_WPM,
) -> bytes:
    """The call spoken by espeak-ng as a WAV file (no network needed); ``SpeechError`` if not."""
    ssml = call_ssml(ticket_number, room, language)
    with tempfile.TemporaryDirectory(prefix="iqms-speech-") as tmp:
        path = Path(tmp) / "call.wav"
        args = [espeak, "-v", voice or language, "-m", "-s", str(rate_wpm), "-w", str(path), ssml]
        try:
            await run_quietly(args, limit_seconds=SPEECH_TIMEOUT_SECONDS)
        except CommandProblem as problem:
            raise SpeechError({
                "missing": f"{espeak} is not installed (Debian/Ubuntu: apt-get install "
                           "espeak-ng); calls are announced with the chime only",
                "cannot_run": f"cannot run {espeak}: {problem.detail}",
                "timeout": f"{espeak} did not finish within {SPEECH_TIMEOUT_SECONDS:.0f} s",
                "failed": f"{espeak} could not speak the call: {problem.detail}",
            }[problem.kind]) from None  # fmt: skip
        if not path.exists() or path.stat().st_size <= 44:
            raise SpeechError(f"{espeak} could not speak the call: no sound was written")
        return path.read_bytes()


__all__ = [
    "ESPEAK",
    "LANGUAGES",
    "Phrase",
    "SpeechError",
    "call_parts",
    "call_ssml",
    "call_text",
    "phrase_for",
    "speak_wav",
]

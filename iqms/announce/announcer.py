"""One queue of calls, played one after the other through the system's audio player.

The board hands every call (and recall) to :meth:`Announcer.announce`, which
returns at once; a single task takes the calls in order, makes the sound (the
chime, and with ``voice`` the call spoken after it, in one WAV file) and runs
the audio player on it, waiting until it finishes before the next call: two
calls never talk over each other. A call that waited longer than
``max_age`` seconds (a burst of calls, a stuck device) is dropped rather than
announced late.

The player is a command: ``IQMS_AUDIO_PLAYER`` (the WAV file's path is
appended, or replaces ``{file}``), or the first of ``aplay``, ``paplay``,
``pw-play`` and ``afplay`` that is installed. When playing fails (no player,
no sound card, a device unplugged), the problem is logged once, :attr:`problem`
says what it is (the board shows a discreet mark), and the next call tries
again; when sound works again that is logged too.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import shlex
import shutil
import tempfile
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from iqms.announce.chime import chime_frames, silence_frames, wav_bytes
from iqms.announce.process import CommandProblem, run_quietly
from iqms.announce.speech import ESPEAK, SpeechError, phrase_for, speak_wav

log = logging.getLogger("iqms.announce")

OFF, CHIME, VOICE = "off", "chime", "voice"
MODES = (OFF, CHIME, VOICE)
#: players tried in turn when none is configured
DEFAULT_PLAYERS: tuple[tuple[str, ...], ...] = (
    ("aplay", "-q"),
    ("paplay",),
    ("pw-play",),
    ("afplay",),
)
#: a call not yet announced after this many seconds is dropped
MAX_AGE_SECONDS = 60.0
#: pause between the chime and the spoken call
GAP_SECONDS = 0.25
#: a player taking this much longer than the sound itself is stopped
PLAYER_GRACE_SECONDS = 10.0


def find_player(configured: str | None = None) -> list[str] | None:
    """The player command: ``configured`` split like a shell would, or the first installed one."""
    if configured and configured.strip():
        return shlex.split(configured)
    for candidate in DEFAULT_PLAYERS:
        if shutil.which(candidate[0]):
            return list(candidate)
    return None


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getnframes() / float(wav.getframerate())


def _join_after_chime(speech: bytes) -> bytes | None:
    """The chime, a short pause and the speech in one WAV (None if the formats differ)."""
    with wave.open(io.BytesIO(speech), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            return None
        rate = wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    return wav_bytes(chime_frames(rate) + silence_frames(GAP_SECONDS, rate) + frames, rate)


@dataclass(frozen=True)
class Announcement:
    """A call to announce: the ticket number and the room."""

    ticket_number: str
    room: str | None
    queued_at: float = field(default_factory=time.monotonic)


class Announcer:
    """Plays calls one at a time; never raises into the board."""

    def __init__(
        self,
        mode: str,
        *,
        language: str = "en",
        player: Sequence[str] | str | None = None,
        espeak: str = ESPEAK,
        max_age: float = MAX_AGE_SECONDS,
        on_problem: Callable[[str | None], None] | None = None,
    ) -> None:
        mode = str(mode)
        if mode not in MODES:
            raise ValueError(f"announce must be one of {', '.join(MODES)}, not {mode!r}")
        if mode == VOICE:
            phrase_for(language)  # ValueError for a language calls cannot be spoken in
        self.mode = mode
        self.language = language
        self.player = (
            find_player(player) if player is None or isinstance(player, str) else list(player)
        )
        self.espeak = espeak
        self.max_age = max_age
        self.on_problem = on_problem
        self.played = 0  # announcements the player finished
        self._problems: dict[str, str] = {}
        self._queue: asyncio.Queue[Announcement] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._tmp: Path | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    # ---- life cycle ------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.mode != OFF

    async def start(self) -> None:
        """Start the playing task (once); with no player, say so once."""
        if not self.enabled or self._task is not None:
            return
        self._tmp = Path(tempfile.mkdtemp(prefix="iqms-announce-"))
        await asyncio.to_thread(chime_frames)  # computed once, off the board's event loop
        if self.player is None:
            self._report(
                "player",
                "no audio player found (install alsa-utils or set IQMS_AUDIO_PLAYER); "
                "calls are shown but not heard",
            )
        self._task = asyncio.create_task(self._run(), name="iqms-announcer")

    async def stop(self) -> None:
        """Stop playing (a sound in progress is cut off) and remove the temporary files."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def announce(self, ticket_number: str, room: str | None) -> None:
        """Queue a call (returns at once; announced after the calls before it)."""
        if not self.enabled or self._task is None:
            return
        self._idle.clear()
        self._queue.put_nowait(Announcement(ticket_number, room))

    async def wait_idle(self) -> None:
        """Until every queued call was announced (or dropped)."""
        await self._idle.wait()

    @property
    def problem(self) -> str | None:
        """What keeps calls from being heard now (None: sound works, or nothing tried yet)."""
        return next(iter(self._problems.values()), None)

    # ---- the one playing task --------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                age = time.monotonic() - item.queued_at
                if age > self.max_age:
                    log.info("dropped the announcement of %s: %.0f s late", item.ticket_number, age)
                else:
                    await self._announce(item)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let a bug here stop the board
                log.exception("announcing %s failed", item.ticket_number)
            finally:
                if self._queue.empty():
                    self._idle.set()

    async def _announce(self, item: Announcement) -> None:
        sound = await self.sound_for(item)
        if self.player is None:
            return
        await self._play(sound)

    async def sound_for(self, item: Announcement) -> bytes:
        """The WAV for a call: the chime, and with ``voice`` the call spoken after it."""
        if self.mode == VOICE:
            try:
                speech = await speak_wav(
                    item.ticket_number, item.room, language=self.language, espeak=self.espeak
                )
            except SpeechError as exc:
                self._report("speech", str(exc))
            else:
                self._resolved("speech", "calls are spoken again")
                joined = await asyncio.to_thread(_join_after_chime, speech)
                if joined is not None:
                    return joined
                log.warning("espeak-ng gave an unexpected WAV format; playing the chime only")
        return wav_bytes(chime_frames())

    async def _play(self, sound: bytes) -> None:
        assert self.player is not None and self._tmp is not None
        path = self._tmp / f"call-{self.played + 1}.wav"
        path.write_bytes(sound)
        if any("{file}" in a for a in self.player):
            args = [a.replace("{file}", str(path)) for a in self.player]
        else:
            args = [*self.player, str(path)]
        player = repr(args[0])
        try:
            await run_quietly(args, limit_seconds=wav_seconds(sound) + PLAYER_GRACE_SECONDS)
        except CommandProblem as problem:
            self._report("player", {
                "missing": f"the audio player {player} is not installed",
                "cannot_run": f"cannot run the audio player {player}: {problem.detail}",
                "timeout": f"the audio player {player} hung; it was stopped",
                "failed": f"the audio player {player} failed: {problem.detail}",
            }[problem.kind])  # fmt: skip
            return
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
        self.played += 1
        self._resolved("player", "sound works again")

    # ---- problems: logged once -------------------------------------------------------------
    def _report(self, kind: str, message: str) -> None:
        if self._problems.get(kind) == message:
            log.debug("%s", message)
            return
        self._problems[kind] = message
        log.warning("announcements: %s", message)
        self._changed()

    def _resolved(self, kind: str, message: str) -> None:
        if self._problems.pop(kind, None) is not None:
            log.warning("announcements: %s", message)
            self._changed()

    def _changed(self) -> None:
        if self.on_problem is not None:
            try:
                self.on_problem(self.problem)
            except Exception:
                log.exception("the announcement status callback failed")


__all__ = [
    "CHIME",
    "DEFAULT_PLAYERS",
    "MODES",
    "OFF",
    "VOICE",
    "Announcement",
    "Announcer",
    "find_player",
    "wav_seconds",
]

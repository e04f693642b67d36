"""A stand-in for the audio player at the process boundary: a command that keeps every WAV.

The board runs its audio player as a command with the WAV file's path; this
one copies each file it is given to ``DIR/1.wav``, ``DIR/2.wav``, ... and
notes in ``DIR/plays.log`` when each play started and ended (it takes
``seconds`` to "play"), so tests can hear what patients would, in order.
"""

from __future__ import annotations

import io
import math
import shlex
import struct
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = """\
import os, shutil, sys, time
from pathlib import Path

out, seconds, fail = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
if fail != "-":
    sys.stderr.write(fail + "\\n")
    sys.exit(1)
started = time.time()
number = len(list(out.glob("*.wav"))) + 1
# copied whole, then renamed: a test never reads half a file
shutil.copyfile(sys.argv[4], out / f"{number}.part")
os.replace(out / f"{number}.part", out / f"{number}.wav")
time.sleep(seconds)
with open(out / "plays.log", "a") as log:
    log.write(f"{number} {started} {time.time()}\\n")
"""


@dataclass
class FakePlayer:
    """The command line of the fake player and where it keeps what it played."""

    directory: Path
    script: Path
    seconds: float = 0.0
    failure: str | None = None

    @property
    def command(self) -> list[str]:
        return [sys.executable, str(self.script), str(self.directory), str(self.seconds),
                self.failure or "-"]  # fmt: skip

    @property
    def setting(self) -> str:
        """The same command as an ``IQMS_AUDIO_PLAYER`` value."""
        return shlex.join(self.command)

    def played(self) -> list[bytes]:
        files = sorted(self.directory.glob("*.wav"), key=lambda p: int(p.stem))
        return [p.read_bytes() for p in files]

    def intervals(self) -> list[tuple[int, float, float]]:
        log = self.directory / "plays.log"
        if not log.exists():
            return []
        rows = [line.split() for line in log.read_text().splitlines()]
        return sorted((int(n), float(a), float(b)) for n, a, b in rows)


def fake_player(tmp_path: Path, *, seconds: float = 0.0, failure: str | None = None) -> FakePlayer:
    directory = tmp_path / "speaker"
    directory.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "fake_player.py"
    script.write_text(_SCRIPT)
    return FakePlayer(directory, script, seconds, failure)


@dataclass(frozen=True)
class Sound:
    """A WAV file as a listener would judge it."""

    channels: int
    sample_width: int
    rate: int
    frames: bytes

    @property
    def seconds(self) -> float:
        return len(self.frames) / (self.sample_width * self.channels * self.rate)

    def rms(self, start: float = 0.0, end: float | None = None) -> float:
        """Loudness between two moments (0 = silence, 1 = full scale)."""
        first = int(start * self.rate) * 2
        last = len(self.frames) if end is None else int(end * self.rate) * 2
        chunk = self.frames[first:last]
        samples = struct.unpack(f"<{len(chunk) // 2}h", chunk)
        if not samples:
            return 0.0
        return math.sqrt(sum(s * s for s in samples) / len(samples)) / 32768


def read_wav(data: bytes) -> Sound:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return Sound(
            wav.getnchannels(),
            wav.getsampwidth(),
            wav.getframerate(),
            wav.readframes(wav.getnframes()),
        )

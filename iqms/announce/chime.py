"""A two-tone chime ("ding-dong") computed in code: 16-bit mono PCM in a WAV container.

Each tone is a sine with two soft overtones and a bell-like decay, so it
carries across a noisy room without being shrill; a short fade at both ends
avoids clicks.
"""

from __future__ import annotations

import functools
import io
import math
import struct
import wave

SAMPLE_RATE = 22_050  # espeak-ng's rate: a chime and a spoken call join into one file
#: the two notes (E5 then C5) and how long each rings
NOTES_HZ = (659.25, 523.25)
NOTE_SECONDS = 0.6
CHIME_SECONDS = NOTE_SECONDS * len(NOTES_HZ)
VOLUME = 0.55  # of full scale
_FADE_SECONDS = 0.005


def _note(frequency: float, seconds: float, rate: int) -> list[float]:
    count = round(seconds * rate)
    fade = max(round(_FADE_SECONDS * rate), 1)
    samples = []
    for i in range(count):
        t = i / rate
        tone = (
            math.sin(2 * math.pi * frequency * t)
            + 0.35 * math.sin(2 * math.pi * 2 * frequency * t)
            + 0.15 * math.sin(2 * math.pi * 3 * frequency * t)
        ) / 1.5
        envelope = math.exp(-3.2 * t / seconds)
        edge = min(1.0, i / fade, (count - 1 - i) / fade)
        samples.append(tone * envelope * edge)
    return samples


@functools.lru_cache(maxsize=4)
def chime_frames(rate: int = SAMPLE_RATE) -> bytes:
    """The chime as little-endian signed 16-bit mono samples (computed once per rate)."""
    samples: list[float] = []
    for frequency in NOTES_HZ:
        samples.extend(_note(frequency, NOTE_SECONDS, rate))
    peak = 32767 * VOLUME
    return struct.pack(f"<{len(samples)}h", *(round(s * peak) for s in samples))


def silence_frames(seconds: float, rate: int = SAMPLE_RATE) -> bytes:
    return b"\x00\x00" * round(seconds * rate)


def wav_bytes(frames: bytes, rate: int = SAMPLE_RATE) -> bytes:
    """16-bit mono ``frames`` as a complete WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return out.getvalue()


def chime_wav(rate: int = SAMPLE_RATE) -> bytes:
    """The chime as a WAV file (:data:`CHIME_SECONDS` long)."""
    return wav_bytes(chime_frames(rate), rate)


__all__ = [
    "CHIME_SECONDS",
    "SAMPLE_RATE",
    "chime_frames",
    "chime_wav",
    "silence_frames",
    "wav_bytes",
]

"""Announcements as patients hear them: the audio player is replaced at the process boundary
by a command that keeps every WAV it is given; the chime and espeak-ng are the real ones."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest

from iqms.announce import CHIME_SECONDS, Announcer, call_text, find_player
from iqms.announce import announcer as announcer_module
from iqms.announce.announcer import GAP_SECONDS, _join_after_chime
from iqms.announce.chime import SAMPLE_RATE
from iqms.announce.speech import call_ssml, speak_wav
from tests.audio_support import fake_player, read_wav


async def announced(announcer: Announcer, *calls: tuple[str, str | None]) -> None:
    await announcer.start()
    try:
        for ticket, room in calls:
            announcer.announce(ticket, room)
        await announcer.wait_idle()
    finally:
        await announcer.stop()


async def test_the_chime_is_a_valid_wav_of_the_expected_length(tmp_path: Path) -> None:
    speaker = fake_player(tmp_path)
    announcer = Announcer("chime", player=speaker.command)
    await announced(announcer, ("A-012", "3"))
    [played] = speaker.played()
    sound = read_wav(played)
    assert (sound.channels, sound.sample_width, sound.rate) == (1, 2, SAMPLE_RATE)
    assert sound.seconds == pytest.approx(CHIME_SECONDS, abs=1 / SAMPLE_RATE)
    assert sound.rms(0, 0.3) > 0.1  # the first note rings out
    assert sound.rms(CHIME_SECONDS / 2, CHIME_SECONDS / 2 + 0.3) > 0.1  # and the second
    assert announcer.played == 1 and announcer.problem is None


async def test_with_voice_espeak_ng_says_the_ticket_and_room_after_the_chime(
    tmp_path: Path,
) -> None:
    speaker = fake_player(tmp_path)
    announcer = Announcer("voice", player=speaker.command, language="en")
    await announced(announcer, ("A-012", "3"))
    [played] = speaker.played()
    sound = read_wav(played)
    speech_starts = CHIME_SECONDS + GAP_SECONDS
    assert 1.0 < sound.seconds - speech_starts < 6.0  # "Ticket A 12, room 3" at 150 words/min
    assert sound.rms(speech_starts, sound.seconds) > 0.02  # somebody is speaking
    assert sound.rms(CHIME_SECONDS + 0.02, speech_starts - 0.02) == 0  # the pause between
    # It is exactly what espeak-ng says for this call (nothing cached from another call).
    expected = _join_after_chime(await speak_wav("A-012", "3", language="en"))
    assert played == expected


def test_letters_are_spelled_and_numbers_read_naturally_in_the_clinics_language() -> None:
    assert call_text("A-012", "3") == "Ticket A 12, room 3"
    assert call_text("ENT-007", "Room 4") == "Ticket ENT 7, Room 4"
    assert call_text("A-012", "3", "es") == "Turno A 12, consulta 3"
    assert call_text("K-100", None, "pt-br") == "Senha K 100"
    with pytest.raises(ValueError, match="cannot be spoken in 'tlh'"):
        call_text("A-001", "1", "tlh")
    # espeak-ng says the letter's name ("ay"), not the article "a" (a schwa).
    phonemes = subprocess.run(
        ["espeak-ng", "-q", "-x", "-m", "-v", "en", call_ssml("A-012", "3")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "'eI" in phonemes and "tw'Elv" in phonemes and "Tr'i:" in phonemes
    assert "a#" not in phonemes


async def test_two_quick_calls_are_announced_in_order_and_never_overlap(
    tmp_path: Path,
) -> None:
    speaker = fake_player(tmp_path, seconds=0.4)
    announcer = Announcer("voice", player=speaker.command, language="en")
    await announced(announcer, ("A-001", "Room 1"), ("B-777", "Room 12"))
    first, second = speaker.played()
    assert first == _join_after_chime(await speak_wav("A-001", "Room 1"))
    assert second == _join_after_chime(await speak_wav("B-777", "Room 12"))
    (n1, start1, end1), (n2, start2, end2) = speaker.intervals()
    assert (n1, n2) == (1, 2)
    assert start1 < end1 <= start2 < end2  # the second waited for the first


async def test_a_broken_audio_device_is_logged_once_and_calls_keep_coming(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = fake_player(tmp_path, failure="aplay: main:831: audio open error: No such device")
    problems: list[str | None] = []
    announcer = Announcer("chime", player=broken.command, on_problem=problems.append)
    await announcer.start()
    try:
        with caplog.at_level(logging.WARNING, logger="iqms.announce"):
            for n in range(3):
                announcer.announce(f"A-00{n + 1}", "1")
            await announcer.wait_idle()
            warnings = [r.getMessage() for r in caplog.records]
            assert warnings == [
                "announcements: the audio player "
                f"{broken.command[0]!r} failed: aplay: main:831: audio open error: No such device"
            ]
            assert announcer.problem is not None and "audio open error" in announcer.problem
            assert broken.played() == [] and announcer.played == 0

            working = fake_player(tmp_path / "later")  # the speaker is plugged back in
            announcer.player = working.command
            announcer.announce("A-004", "1")
            await announcer.wait_idle()
        assert len(working.played()) == 1
        assert announcer.problem is None
        assert caplog.records[-1].getMessage() == "announcements: sound works again"
        assert problems == [
            f"the audio player {broken.command[0]!r} failed: {broken.failure}",
            None,
        ]
    finally:
        await announcer.stop()


async def test_without_espeak_ng_voice_falls_back_to_the_chime(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    speaker = fake_player(tmp_path)
    announcer = Announcer("voice", player=speaker.command, espeak=str(tmp_path / "no-espeak"))
    with caplog.at_level(logging.WARNING, logger="iqms.announce"):
        await announced(announcer, ("A-001", "1"), ("A-002", "2"))
    assert [read_wav(w).seconds for w in speaker.played()] == pytest.approx(
        [CHIME_SECONDS, CHIME_SECONDS], abs=0.001
    )
    assert [r.getMessage() for r in caplog.records] == [
        f"announcements: {tmp_path / 'no-espeak'} is not installed (Debian/Ubuntu: apt-get "
        "install espeak-ng); calls are announced with the chime only"
    ]


async def test_a_missing_player_is_reported_and_late_calls_are_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="iqms.announce"):
        announcer = Announcer("chime", player=[str(tmp_path / "no-player")])
        await announced(announcer, ("A-001", "1"), ("A-002", "1"))
    assert [r.getMessage() for r in caplog.records] == [
        f"announcements: the audio player '{tmp_path / 'no-player'}' is not installed"
    ]
    speaker = fake_player(tmp_path)
    late = Announcer("chime", player=speaker.command, max_age=0.0)
    await announced(late, ("A-003", "1"))
    assert speaker.played() == []  # older than max_age when its turn came: not announced late
    off = Announcer("off", player=speaker.command)
    await announced(off, ("A-004", "1"))
    assert speaker.played() == []


def test_the_player_command_comes_from_the_setting_or_the_system() -> None:
    assert find_player("paplay --volume 50000") == ["paplay", "--volume", "50000"]
    assert find_player("ffplay -nodisp -autoexit {file}") == [
        "ffplay", "-nodisp", "-autoexit", "{file}"
    ]  # fmt: skip
    found = find_player(None)
    assert found is None or found[0] in {"aplay", "paplay", "pw-play", "afplay"}
    with pytest.raises(ValueError, match="announce must be one of off, chime, voice"):
        Announcer("loud")


async def test_a_hung_audio_player_is_stopped_and_reported_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(announcer_module, "PLAYER_GRACE_SECONDS", 0.3)
    pids = tmp_path / "pids"
    stuck = tmp_path / "stuck-player"
    stuck.write_text(f'#!/bin/sh\necho $$ >> "{pids}"\nexec sleep 30\n')
    stuck.chmod(0o755)
    announcer = Announcer("chime", player=[str(stuck)])
    with caplog.at_level(logging.WARNING, logger="iqms.announce"):
        await announced(announcer, ("A-001", "1"), ("A-002", "1"))
    assert [r.getMessage() for r in caplog.records] == [
        f"announcements: the audio player {str(stuck)!r} hung; it was stopped"
    ]
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 2  # the second call was still tried
    for pid in started:  # and neither player was left running
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

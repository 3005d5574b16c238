"""Issue 37, point 3: the local engine's word and cue times match the audio from the
first word on: no first word started in the VAD's quiet padding, no last word cut at
its final stop's closure, and the same sidecars every run at any ``cpu_threads``."""

from __future__ import annotations

import re
import shutil
import subprocess
import wave
from typing import TYPE_CHECKING

import numpy as np
import pytest

from test_local37 import first_sound, last_sound, once, words

if TYPE_CHECKING:
    from pathlib import Path

SAID = (
    "The director of the northern office asked the sales team to prepare a detailed plan"
    " for the new website before the end of next week"
)


def quiet_then_talk(path: Path, quiet: float) -> Path:
    """``quiet`` seconds of silence, then SAID (espeak-ng), the recording ending where its
    sound does (no quiet after the last word)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: apt-get install espeak-ng")
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part.wav")
    subprocess.run(["espeak-ng", "-s", "165", "-w", str(part), SAID], check=True)
    with wave.open(str(part)) as piece:
        params, rate = piece.getparams(), piece.getframerate()
        samples = np.frombuffer(piece.readframes(piece.getnframes()), dtype=np.int16)
    part.unlink()
    loud = np.flatnonzero(np.abs(samples) > 500)
    samples = samples[: loud[-1] + 1]
    staging = path.with_suffix(".staging")
    with wave.open(str(staging), "wb") as out:
        out.setparams(params)
        out.writeframes(b"\0" * int(2 * rate * quiet) + samples.tobytes())
    staging.rename(path)
    return path


@pytest.fixture
def local(setup):
    """The local engine at its shipped defaults, tiny.en, txt and srt."""
    setup.data["endpoints"] = {"here": {"kind": "local"}}
    setup.data["defaults"] = {
        "endpoint": "here",
        "model": "tiny.en",
        "settle_seconds": 0.2,
        "formats": ["txt", "srt"],
    }
    setup.data["log"] = {"format": "json", "level": "info"}
    return setup


def cues(srt: str) -> list[tuple[float, float]]:
    stamps = re.findall(r"(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})", srt)
    return [
        (
            int(a) * 3600 + int(b) * 60 + int(c) + int(d) / 1000,
            int(e) * 3600 + int(f) * 60 + int(g) + int(h) / 1000,
        )
        for a, b, c, d, e, f, g, h in stamps
    ]


@pytest.mark.slow
def test_the_first_cue_starts_at_the_first_word_and_the_last_ends_at_its_sound(local):
    """A sentence after 1.5 s of quiet, ending at its last word, through `dropscribe once`:
    the first cue starts within 0.1 s of the speech (not in the VAD's padding before it),
    the last ends within 0.05 s of the sound (not at its final stop's closure)."""
    wav = quiet_then_talk(local.inbox / "talk.wav", quiet=1.5)
    _, sidecars = once(local)
    assert words(sidecars["txt"])[:3] == ["the", "director", "of"], sidecars["txt"]
    timed = cues(sidecars["srt"])
    assert abs(timed[0][0] - first_sound(wav)) <= 0.1, (first_sound(wav), sidecars["srt"])
    assert timed[-1][1] >= last_sound(wav) - 0.05, (last_sound(wav), sidecars["srt"])


def test_a_word_ending_at_its_final_stops_closure_ends_after_the_release():
    """snap.snapped: an end Whisper put at a final stop's closure ("wee|k") moves on past
    the release when that sound ends before the next word (or the recording); where the
    sound after the closure runs into the next word, the end stays."""
    from dropscribe.timing import snap

    loud = np.zeros(80, dtype=np.bool_)
    loud[10:41] = loud[44:51] = True  # a word, a 30-ms closure, its release, then quiet
    assert snap.snapped([(0.10, 0.41)], loud) == [(0.10, 0.51)]
    assert snap.snapped([(0.10, 0.42)], loud) == [(0.10, 0.51)]  # the end in the closure
    loud[51:] = True  # no quiet: the release runs on into the next word
    assert snap.snapped([(0.10, 0.41), (0.44, 0.7)], loud)[0] == (0.10, 0.41)


def test_a_first_word_timed_in_the_vads_padding_starts_at_the_speech():
    """batched: a span's padding is known where it follows quiet (not at a slice's start,
    not touching the span before); a word start placed in it moves to the speech, unless
    the word ends there too."""
    from dropscribe.transcribe.batched import Piece, padded

    pad = 6400  # 400 ms
    slices = [[(0, 9000), (20000, 30000), (30000, 40000)], [(48000, 50000), (52000, 53000)]]
    assert padded(slices, 48000) == {20000: pad, 52000: pad}
    piece = Piece(
        samples=np.zeros(32000, dtype=np.float32),
        starts=[0.0, 1.0],
        places=[5.0, 9.0],
        pauses=[],
        leads=(0.4, 0.0),
    )
    assert piece.heard(0.0, 0.7) == 0.4
    assert piece.heard(0.1, 0.3) == 0.1  # ends in the pad: left as it was
    assert piece.heard(1.0, 1.5) == 1.0  # no known pad before the second span
    assert piece.heard(0.5, 0.9) == 0.5


@pytest.mark.slow
def test_the_same_file_gives_the_same_sidecars_at_two_threads(local):
    """`dropscribe once` twice on the same recording at ``cpu_threads: 2`` (one batch at
    a time on two threads, as bench/align.py runs it): the same sidecars byte for byte."""
    local.data["endpoints"]["here"]["cpu_threads"] = 2
    quiet_then_talk(local.inbox / "talk.wav", quiet=1.5)
    _, first = once(local)
    _, again = once(local)
    assert again == first

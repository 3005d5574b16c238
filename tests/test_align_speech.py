"""Real speech with known word times: libespeak-ng through ctypes, its word events the truth.

``spoken(text)`` is shared by the alignment tests and ``bench/align.py``; the tests here
check the truth itself (every word once, in order, starting where its sound does).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import pickle
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

RATE = 16000
ONSET_FRAMES = 3  # 10 ms frames of a next word's sound that may come before its event
_WORD, _SAMPLERATE = 1, 8  # espeak_EVENT_TYPE
_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS
_UTF8 = 1  # espeakCHARS_UTF8


class _Event(ctypes.Structure):
    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    )


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class Spoken:
    """Speech as mono 16 kHz samples, and each word's true start (and end: the end of its
    sound before the next word starts), in seconds."""

    pcm: np.ndarray
    words: list[tuple[str, float, float]]

    @property
    def seconds(self) -> float:
        return len(self.pcm) / RATE

    def write(self, path: Path) -> Path:
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(self.pcm.tobytes())
        return path


_lib: Any = None


def _espeak() -> Any:
    global _lib  # noqa: PLW0603 - loaded and initialised once per process
    if _lib is None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            pytest.fail("libespeak-ng is not installed: apt-get install espeak-ng")
        lib.espeak_Initialize.restype = ctypes.c_int
        rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, None, 0x8000)  # DONT_EXIT
        if rate <= 0:
            pytest.fail("libespeak-ng did not initialise")
        lib.dropscribe_rate = rate
        _lib = lib
    return _lib


def _synthesised(
    text: str, speed: int, voice: str
) -> tuple[list[np.ndarray], list[tuple[int, int]], int]:
    """In a fresh process: the audio chunks, the word events and the rate of ``text``."""
    lib = _espeak()
    chunks: list[np.ndarray] = []
    starts: list[tuple[int, int]] = []  # (text position, sample at the source rate)

    def collect(wav: Any, count: int, events: Any) -> int:
        if count > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        n = 0
        while events[n].type != 0:
            event = events[n]
            if event.type == _WORD:
                starts.append((event.text_position, event.audio_position))
            n += 1
        return 0

    callback = _CALLBACK(collect)
    lib.espeak_SetSynthCallback(callback)
    lib.espeak_SetVoiceByName(voice.encode())
    lib.espeak_SetParameter(1, speed, 0)  # espeakRATE, absolute
    data = text.encode()
    lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, _UTF8, None, None)
    lib.espeak_Synchronize()
    return chunks, starts, int(lib.dropscribe_rate)


def spoken(text: str, *, speed: int = 165, voice: str = "en-us", gap: float = 0.0) -> Spoken:
    """``text`` spoken by espeak-ng, resampled to 16 kHz, with its word events as truth;
    ``gap`` seconds of silence before the speech. Each text is synthesised in a fresh
    process: libespeak-ng keeps state from one utterance to the next, so the same text
    said later in a process sounds slightly different (and a test would depend on the
    tests before it)."""
    child = (
        "import pickle, sys; sys.path.insert(0, sys.argv[1]); import test_align_speech as t;"
        " sys.stdout.buffer.write(pickle.dumps(t._synthesised(sys.argv[2], int(sys.argv[3]),"
        " sys.argv[4])))"
    )
    here = str(Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, "-c", child, here, text, str(speed), voice],
        capture_output=True,
        check=True,
        timeout=120,
    )
    chunks, starts, rate = pickle.loads(done.stdout)
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    # resample to 16 kHz (linear: speech from espeak has little above 8 kHz)
    count = round(len(audio) * RATE / rate)
    pcm = np.interp(np.arange(count) * rate / RATE, np.arange(len(audio)), audio)
    lead = np.zeros(round(gap * RATE))
    samples = np.concatenate((lead, pcm)).clip(-32768, 32767).astype(np.int16)
    words = _truth(text, starts, samples, gap)
    return Spoken(samples, words)


def _truth(
    text: str, starts: list[tuple[int, int]], pcm: np.ndarray, gap: float
) -> list[tuple[str, float, float]]:
    """Each word of ``text`` (split on spaces) with its event's start; its end is where
    its sound stops (10 ms frames over a floor) before the next word's start."""
    offsets = []
    at = 0
    for word in text.split():
        at = text.index(word, at)
        offsets.append(at + 1)  # espeak counts characters from 1
        at += len(word)
    by_position = dict(starts)
    times = []
    for offset in offsets:
        ms = by_position.get(offset)
        if ms is None:  # a word espeak split or joined: the nearest event at or before it
            ms = max((m for p, m in starts if p <= offset), default=0)
        times.append(gap + ms / 1000)
    frame = RATE // 100
    level = np.sqrt(
        np.mean(pcm[: len(pcm) // frame * frame].astype(np.float64).reshape(-1, frame) ** 2, 1)
    )
    loud = level > 300.0
    words = []
    for n, word in enumerate(text.split()):
        start = times[n]
        limit = times[n + 1] if n + 1 < len(times) else len(pcm) / RATE
        lo, hi = round(start * 100), min(round(limit * 100), len(loud))
        voiced = np.flatnonzero(loud[lo:hi])
        # The next word's sound may begin a frame or two before its event: after a
        # pause, a loud run that only touches the next start is that word's, not this.
        runs = np.split(voiced, np.flatnonzero(np.diff(voiced) > 1) + 1)
        if len(runs) > 1 and runs[-1][-1] == hi - lo - 1 and len(runs[-1]) <= ONSET_FRAMES:
            voiced = np.concatenate(runs[:-1])
        end = (lo + voiced[-1] + 1) / 100 if len(voiced) else limit
        words.append((word, round(start, 3), round(max(end, start), 3)))
    return words


def test_every_word_has_a_start_in_order():
    """espeak-ng's word events give every word of the text one start, in order."""
    said = "The weather was cold on Monday morning, and the trains ran late."
    speech = spoken(said)
    assert [w for w, _, _ in speech.words] == said.split()
    starts = [s for _, s, _ in speech.words]
    assert starts == sorted(starts)
    assert 0.0 <= starts[0] < starts[-1] < speech.seconds


def test_a_word_after_a_pause_starts_at_its_sound():
    """A word after silence starts (by its event) within 60 ms of where its sound begins."""
    speech = spoken("Hello there.", gap=1.0)
    first = speech.words[0][1]
    loud = np.flatnonzero(np.abs(speech.pcm.astype(np.int32)) > 1000)
    assert abs(loud[0] / RATE - first) < 0.06

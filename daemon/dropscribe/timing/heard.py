"""Whether a recording holds speech, asked only when an answer came back empty.

An empty transcript of silence is right; an empty transcript of speech is an engine
that heard nothing it could write (an English-only model given German, a server that
lost the audio) and must not be marked done. The speech is found by the Silero VAD
that faster-whisper ships (``dropscribe[local]``), handed decoded samples, never a
path; without it, by loudness: sound over the recording's own noise floor.

The audio is decoded here as it is read (PyAV, mono 16 kHz), a VAD window at a time.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dropscribe.audio import split, transcode
from dropscribe.errors import EmptyAnswer, PermanentError
from dropscribe.timing import snap

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import numpy.typing as npt

RATE = transcode.RATE
WINDOW_SECONDS = 30  # the VAD's window, as the local engine takes it (batched.VAD_SECONDS)
LEAST_SPEECH = 1.0  # seconds of speech under which an empty answer is believed


@dataclass(frozen=True)
class Heard:
    """How much speech a recording holds, and how that was found (``vad``, ``energy``)."""

    seconds: float
    how: str

    @property
    def speech(self) -> bool:
        """Whether there is enough speech that an empty answer is not believed."""
        return self.seconds >= LEAST_SPEECH


def heard(content: Path) -> Heard:
    """The seconds of speech in ``content``'s first audio stream."""
    how = "energy" if importlib.util.find_spec("faster_whisper") is None else "vad"
    try:
        return Heard(_loud_seconds(content) if how == "energy" else _vad_seconds(content), how)
    except PermanentError:  # the engine read it; what cannot be read here is believed
        return Heard(0.0, how)


def empty_answer(content: Path) -> PermanentError | None:
    """The failure an empty answer for ``content`` is, when speech was heard in it."""
    found = heard(content)
    if not found.speech:
        return None
    what = "speech" if found.how == "vad" else "sound (no VAD without dropscribe[local])"
    return EmptyAnswer(f"the answer was empty although {found.seconds:.1f} s of {what} were heard")


def _windows(content: Path) -> Iterator[npt.NDArray[np.int16]]:
    """``content``'s samples WINDOW_SECONDS at a time (the last one shorter)."""
    step = WINDOW_SECONDS * RATE
    held: list[npt.NDArray[np.int16]] = []
    count = 0
    for block in transcode.Samples(content):
        held.append(block)
        count += len(block)
        if count >= step:
            audio = np.concatenate(held)
            for at in range(0, len(audio) - step + 1, step):
                yield audio[at : at + step]
            rest = audio[len(audio) // step * step :]
            held, count = [rest], len(rest)
    if count:
        yield np.concatenate(held)


def _vad_seconds(content: Path) -> float:
    from faster_whisper.vad import VadOptions, get_speech_timestamps  # noqa: PLC0415

    options = VadOptions()
    samples = 0
    for window in _windows(content):
        found = get_speech_timestamps(window.astype(np.float32) / 32768.0, options)
        samples += sum(span["end"] - span["start"] for span in found)
    return samples / RATE


def _loud_seconds(content: Path) -> float:
    """Seconds of sound over the noise floor, over the whole recording at once (the
    floor is the recording's own); 2 bytes a sample in memory."""
    pcm = np.concatenate(list(transcode.Samples(content)))
    return float(np.count_nonzero(snap.loud_frames(pcm, RATE))) * split.FRAME

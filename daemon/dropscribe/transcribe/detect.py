"""The language a recording is spoken in, heard by a multilingual faster-whisper model
in its first 30 s of speech (the Silero VAD finds the speech; Whisper's language token
gives a probability for each of its languages). A model that knows English only hears
nothing here: its probabilities are not asked for.

The audio is decoded here (PyAV, mono 16 kHz), LEAD_SECONDS at most: never a path
handed to the library."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dropscribe.audio.transcode import RATE, Samples
from dropscribe.transcribe.english import english_only

if TYPE_CHECKING:
    from pathlib import Path

    import numpy.typing as npt

__all__ = ["english_only", "lead", "probabilities"]  # english_only: english.py, as spoken.py asks

LEAD_SECONDS = 180  # the start of the recording read to find 30 s of speech in


def lead(content: Path) -> npt.NDArray[np.float32]:
    """The first LEAD_SECONDS of ``content`` as floats in [-1, 1)."""
    wanted = LEAD_SECONDS * RATE
    blocks: list[npt.NDArray[np.int16]] = []
    count = 0
    for block in Samples(content):
        blocks.append(block)
        count += len(block)
        if count >= wanted:
            break
    if not blocks:
        return np.zeros(0, dtype=np.float32)
    audio = np.concatenate(blocks)[:wanted].astype(np.float32)
    audio /= 32768.0
    return audio


def probabilities(model: Any, audio: npt.NDArray[np.float32]) -> list[tuple[str, float]] | None:
    """(code, probability) of each language ``model`` knows, best first, for the first
    30 s of speech in ``audio``; None when the model knows English only, [] when there
    is no speech to hear."""
    if not model.model.is_multilingual:
        return None
    if len(audio) < RATE // 2:
        return []
    try:
        _, _, found = model.detect_language(audio, vad_filter=True)
    except ValueError:  # no speech at all: nothing to concatenate
        return []
    return [(code, float(p)) for code, p in found]

"""The language a recording is spoken in, heard by a multilingual faster-whisper model
in its first 30 s of speech (the Silero VAD finds the speech; Whisper's language token
gives a probability for each of its languages). A model that knows English only hears
nothing here: its probabilities are not asked for.

The audio is decoded here (PyAV, mono 16 kHz), LEAD_SECONDS at most: never a path
handed to the library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dropscribe.audio.transcode import RATE, Samples

if TYPE_CHECKING:
    import numpy.typing as npt

LEAD_SECONDS = 180  # the start of the recording read to find 30 s of speech in
MULTILINGUAL_VOCABULARY = 51865  # CTranslate2's rule: a smaller vocabulary is English only


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


def multilingual(folder: Path) -> bool | None:
    """Whether the model in ``folder`` knows more than English, by the size of its
    vocabulary (what CTranslate2 decides it by) without loading it; None when the folder
    says nothing readable."""
    for name in ("vocabulary.json", "vocabulary.txt"):
        try:
            text = (folder / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        try:
            size = len(json.loads(text)) if name.endswith(".json") else len(text.splitlines())
        except ValueError:
            return None
        return size >= MULTILINGUAL_VOCABULARY
    return None


def english_only(name: str) -> bool:
    """Whether model ``name`` knows English only: by its files when it is a folder (the
    size of its vocabulary, read without loading it), else by its name (``*.en``)."""
    folder = Path(name).expanduser()
    if folder.is_dir() and (many := multilingual(folder)) is not None:
        return not many
    return name.rstrip("/").endswith(".en")

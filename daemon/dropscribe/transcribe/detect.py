"""The language a recording is spoken in, heard by a multilingual faster-whisper model
in its first 30 s of speech (the Silero VAD finds the speech; Whisper's language token
gives a probability for each of its languages). A model that knows English only hears
nothing here: its probabilities are not asked for.

The audio is decoded here (PyAV, mono 16 kHz), LEAD_SECONDS at most: never a path
handed to the library."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dropscribe.audio.transcode import RATE, Samples
from dropscribe.errors import PermanentError
from dropscribe.transcribe import english
from dropscribe.transcribe.english import VOCABULARY_BYTES

if TYPE_CHECKING:
    import numpy.typing as npt

LEAD_SECONDS = 180  # the start of the recording read to find 30 s of speech in
# How this module listens, kept with what it heard (ledger/heard.py): a new way of
# listening hears again what an older one heard.
WAY = "lead180-vad30"


def lead(content: Path, track: int = 0) -> npt.NDArray[np.float32]:
    """The first LEAD_SECONDS of audio track ``track`` of ``content`` (that stream only
    decoded) as floats in [-1, 1)."""
    wanted = LEAD_SECONDS * RATE
    blocks: list[npt.NDArray[np.int16]] = []
    count = 0
    for block in Samples(content, track):
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


def english_only(name: str) -> bool:
    """``english.english_only``, once a folder's files are known ``usable`` to a loader
    (PermanentError naming the one that is not)."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        usable(folder)
    return english.english_only(name)


def usable(folder: Path) -> None:
    """PermanentError naming the first file in model ``folder`` that no loader should
    open: a FIFO (the open would wait for ever), a device, a socket, a link that leads
    nowhere or round in a loop, a vocabulary over VOCABULARY_BYTES."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise PermanentError(f"language_model {folder}: {exc.strerror or exc}") from None
    for entry in entries:
        try:
            st = entry.stat()
        except OSError as exc:
            raise PermanentError(f"language_model {entry.path}: {exc.strerror or exc}") from None
        if stat.S_ISDIR(st.st_mode):
            continue
        if not stat.S_ISREG(st.st_mode):
            raise PermanentError(f"language_model {entry.path} is not a regular file")
        if entry.name.startswith("vocabulary.") and st.st_size > VOCABULARY_BYTES:
            raise PermanentError(
                f"language_model {entry.path} is {st.st_size:,} bytes; a Whisper"
                f" vocabulary is under {VOCABULARY_BYTES:,}"
            )

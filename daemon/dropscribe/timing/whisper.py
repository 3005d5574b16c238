"""The local Whisper model's alignment heads over one window of audio.

The model is loaded once per name (the bundled ``tiny.en`` offline, a path as it is,
another name as faster-whisper finds it) and shared by every job; one window is
aligned at a time per model, so alignment takes a bounded share of the machine.
A window's samples are handed to the model as an array: it never reads a file.

Before each window the C heaps' free pages go back to the system (glibc's
``malloc_trim``): the encoder's and the alignment's buffers (60-100 MB each for a full
window, freed each time) otherwise stayed with the process in pieces the next window's
did not fit, 140 MB more resident after 30 minutes than before the first window. The
model's threads share one heap (``heap.before_loading``, as the local engine's do, and
``DROPSCRIBE_HEAP=small`` applies here too). 30 minutes aligned peaked at 417-420 MiB;
trimmed, 372 MiB; trimmed in one heap, 363 MiB, for 3% more CPU time (bench/align.py,
each against the untrimmed in the same run).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import os
import threading
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from dropscribe.config import files
from dropscribe.errors import Abandoned, EndpointError
from dropscribe.transcribe import heap, local

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

log = structlog.get_logger("dropscribe")

RATE = 16000
FRAMES = 3000  # mel frames of the 30 s the encoder takes
PER_SECOND = 50  # alignment steps (encoder positions) a second
MOST_TOKENS = 440  # of the decoder's 448 positions, the rest for the start sequence
MEDIAN_FILTER = 7  # faster-whisper's own width for its word timestamps
THREADS = 4  # at most, per alignment

_loaded: dict[str, Any] = {}
_guard = threading.Lock()
_turns: dict[str, threading.Lock] = {}


def english_only(name: str) -> bool:
    """Whether the model named ``name`` knows English only (Whisper's ``.en`` models)."""
    return name.rstrip("/").endswith(".en")


def model(name: str) -> tuple[Any, threading.Lock]:
    """The loaded model ``name`` and the lock its windows take turns under."""
    with _guard:
        if name in _loaded:
            return _loaded[name], _turns[name]
        try:
            from faster_whisper import WhisperModel  # noqa: PLC0415 - the optional extra
        except ImportError:
            raise EndpointError("local timing needs faster-whisper: dropscribe[local]") from None
        source, on_disk = local.resolve_model(name)
        if on_disk and (why := files.unloadable(Path(source))):  # attack14: a FIFO hung it
            raise EndpointError(f"cannot load the timing model {name!r}: {why}")
        started = time.monotonic()
        heap.before_loading()  # one glibc heap for the model's threads, as the local engine's
        try:
            loaded = WhisperModel(
                source,
                device="cpu",
                compute_type="int8",
                cpu_threads=min(THREADS, os.cpu_count() or 1),
                local_files_only=on_disk or os.environ.get("HF_HUB_OFFLINE", "") not in {"", "0"},
            )
        except Exception as exc:  # ctranslate2/hub errors have no common base
            raise EndpointError(
                f"cannot load the timing model {name!r}: {exc.__class__.__name__}: {exc}"
            ) from None
        log.info(
            "timing.model_loaded",
            model=name,
            path=source,
            ms=round((time.monotonic() - started) * 1000),
        )
        _loaded[name], _turns[name] = loaded, threading.Lock()
        return loaded, _turns[name]


class Windows:
    """Aligns the words of one window of ``pcm`` (mono 16 kHz) at a time with ``name``;
    once ``abort`` is set (the daemon stops) the next window raises ``Abandoned``."""

    def __init__(
        self,
        name: str,
        pcm: npt.NDArray[np.int16],
        language: str | None,
        abort: threading.Event | None = None,
    ) -> None:
        from faster_whisper.tokenizer import Tokenizer  # noqa: PLC0415 - the optional extra

        self._model, self._turn = model(name)
        multilingual = self._model.model.is_multilingual
        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer,
            multilingual,
            task="transcribe",
            language=(language or "en") if multilingual else None,
        )
        self._pcm = pcm
        self._abort = abort
        self._tokens: dict[str, list[int]] = {}
        self.windows = 0  # how many were aligned
        self.probabilities: list[float] = []  # of each window's tokens, as the model heard them

    def __call__(self, start: float, end: float, words: Sequence[str]) -> list[tuple[float, float]]:
        """A (start, end) in seconds of the recording for as many of ``words`` as fit."""
        import ctranslate2  # noqa: PLC0415 - with faster-whisper

        self.check()
        trimmed()  # the last window's buffers, all freed by now
        tokens: list[int] = []
        bounds = [0]
        for word in words:
            these = self._word_tokens(word)
            if len(tokens) + len(these) > MOST_TOKENS:
                break
            tokens += these
            bounds.append(len(tokens))
        if not tokens:
            return []
        samples = self._pcm[round(start * RATE) : round(end * RATE)]
        audio = samples.astype(np.float32) / 32768.0
        features = self._model.feature_extractor(audio)
        frames = min(FRAMES, features.shape[-1])
        # Only the window's own frames (an even count): padding to 30 s costs a quarter
        # more and times the words no better (measured: bench/align.py).
        padded = np.zeros((1, features.shape[0], frames + frames % 2), dtype=np.float32)
        padded[0, :, :frames] = features[:, :frames]
        with self._turn:
            self.check()  # another job's window may have run while the daemon was stopping
            encoded = self._model.model.encode(
                ctranslate2.StorageView.from_array(padded), to_cpu=False
            )
            result = self._model.model.align(
                encoded,
                self._tokenizer.sot_sequence,
                [tokens],
                frames,
                median_filter_width=MEDIAN_FILTER,
            )[0]
        self.windows += 1
        self.probabilities.append(float(np.mean(result.text_token_probs)))
        steps = np.array(result.alignments)
        if len(steps) == 0:
            return []
        jumps = np.pad(np.diff(steps[:, 0]), (1, 0), constant_values=1).astype(bool)
        at = steps[:, 1][jumps] / PER_SECOND  # when each token (and the end) begins
        if len(at) < len(tokens) + 1:
            return []
        return [(start + float(at[a]), start + float(at[b])) for a, b in itertools.pairwise(bounds)]

    def check(self) -> None:
        """Raise ``Abandoned`` when the daemon is stopping: the file runs again at start."""
        if self._abort is not None and self._abort.is_set():
            raise Abandoned

    def _word_tokens(self, word: str) -> list[int]:
        found = self._tokens.get(word)
        if found is None:
            found = self._tokens[word] = list(self._tokenizer.encode(" " + word))
        return found


def trimmed() -> None:
    """Return the C heaps' free pages to the system (glibc only; elsewhere nothing)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


@cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"))
    except (OSError, TypeError):
        return None

"""The local engine's second look: a piece the batched pass decoded badly is decoded again.

``BatchedInferencePipeline`` decodes each piece once, without timestamps and at
temperature 0: fast, but a piece can come back as a loop (``World-wheel-wheel-…``), as a
few words with "no speech" for 30 s of it, or as one 30-s segment whose text compresses
too well. The sidecars' guard (``outputs/guard.py``) rightly leaves such segments out, and
with them every word of the piece. So a piece whose answer shows any of Whisper's own
signs (``flagged``) is decoded again here, the way faster-whisper's sequential
``transcribe`` does: with timestamps (segments of a sentence or two, each judged alone),
deterministic beam search first. Where that is still flagged, the piece is halved at
its quietest moment near the middle and each half goes through the same again, down to
``SMALLEST_SECONDS``; there, faster-whisper's temperature fallback (0.0 to 1.0) has the
last word. Only what that last decode too calls no speech is left out, with a
``speech.unheard`` warning, never silently.

The fallback samples, and its words must be a function of the piece alone (``Seeded``).
CTranslate2 draws from a generator per thread (``src/random.cc``: a ``thread_local``
``std::mt19937`` made at the thread's first draw from the global seed), and
``set_random_seed`` only changes that global seed: no thread that has drawn is reseeded.
The model's worker threads live as long as the model, so on the shared model a sample
depends on which worker took the call and on everything it sampled before, in this file
or any other. Greedy instead (``sampling_topk=1``, CTranslate2's ``BestSampler``) would
be deterministic but ignores the temperature: every step of the fallback would give the
same argmax decode, and the fallback is there to leave the loops that decoding falls into.
So the sampling calls of one last-resort decode go to a replica of the model loaded for
it alone, whose one new worker thread starts its generator from ``SEED``. Its cost, for
tiny.en on two busy cores: 0.2-0.4 s to load, a last resort through all six temperatures
of a 5-s piece 5.3 s instead of 4.5 (medians of 3, one process), 46 MiB more at the peak
while it runs; one replica at a time, and only where a window's beam search failed.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import structlog

from dropscribe.audio.transcode import RATE
from dropscribe.transcribe import heap
from dropscribe.transcript import COMPRESSION, LOGPROB, NO_SPEECH

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    import numpy.typing as npt

    from dropscribe.transcribe.batched import Piece

log = structlog.get_logger("dropscribe")

SPARSE_CHARS = 4.0  # characters a second of speech below which words were lost
SMALLEST_SECONDS = 8.0  # a piece this short is not halved again
FALLBACK = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # faster-whisper's temperatures
SEED = 1  # the generator's seed in each last-resort replica (and the shared model's)

Found = list[tuple[float, Any]]  # (offset in the recording, faster-whisper Segment)


class Why(NamedTuple):
    sign: str
    value: float


def flagged(segment: Any) -> Why | None:
    """The sign that a segment was decoded badly, if it shows one. (A high no-speech
    probability alone is none: the batched pass reads it once for a whole piece, and
    pieces of 70-95 words came back with 0.61-0.69; a piece that lost its words is
    found by ``sparse`` instead.)"""
    if segment.compression_ratio > COMPRESSION:
        return Why("compression_ratio", segment.compression_ratio)
    if segment.avg_logprob < LOGPROB:
        return Why("avg_logprob", segment.avg_logprob)
    return None


def sparse(texts: Iterable[str], seconds: float) -> Why | None:
    """The sign that a piece of ``seconds`` of speech (as the VAD found it) came back with
    too few words: fewer than ``SPARSE_CHARS`` characters a second (speech runs at 12-16;
    none at all is the extreme case)."""
    rate = sum(len(text.strip()) for text in texts) / max(seconds, 1e-3)
    return Why("sparse", rate) if rate < SPARSE_CHARS else None


def unheard(segment: Any) -> bool:
    """Whisper's own verdict for no speech: likely silent, and decoded unsure."""
    return bool(segment.no_speech_prob > NO_SPEECH and segment.avg_logprob < LOGPROB)


def checked(
    model: Any,
    piece: Piece,
    said: Found,
    options: dict[str, Any],
    drain: Callable[[Iterable[Any]], Iterator[Any]],
) -> Found:
    """A piece's segments (timed in its clip): ``said`` itself where no sign shows (the
    batched pass then looks for gaps in it), else the piece decoded again (``again``)."""
    seconds = len(piece.samples) / RATE
    signs = [why for _, s in said if (why := flagged(s))]
    signs += filter(None, [sparse((s.text for _, s in said), seconds)])
    if not signs:
        return said
    log.info(
        "piece.redecoded",
        start=round(piece.places[0], 3),
        seconds=round(seconds, 3),
        sign=signs[0].sign,
        value=round(signs[0].value, 2),
    )
    return again(model, piece.samples, 0.0, options, drain, piece.place)


def again(
    model: Any,
    samples: npt.NDArray[np.float32],
    at: float,
    options: dict[str, Any],
    drain: Callable[[Iterable[Any]], Iterator[Any]],
    place: Callable[[float], float] = float,
) -> Found:
    """``samples`` (``at`` seconds into a piece's clip) decoded again, as (offset,
    segment); ``place`` gives the recording's time of a clip's, for the warnings."""
    smallest = len(samples) <= SMALLEST_SECONDS * RATE
    temperature = FALLBACK if smallest else 0.0
    found = _decode(model, samples, options, temperature, drain)
    if not smallest and (not found or any(flagged(s) for s in found)):
        half = quietest(samples)
        return [
            *again(model, samples[:half], at, options, drain, place),
            *again(model, samples[half:], at + half / RATE, options, drain, place),
        ]
    kept: Found = []
    for segment in found:
        if unheard(segment):
            _warn(place(at + segment.start), place(at + segment.end), segment)
        else:
            kept.append((at, segment))
    if not found:
        _warn(place(at), place(at + len(samples) / RATE), None)
    return kept


def _decode(
    model: Any,
    samples: npt.NDArray[np.float32],
    options: dict[str, Any],
    temperature: float | tuple[float, ...],
    drain: Callable[[Iterable[Any]], Iterator[Any]],
) -> list[Any]:
    with seeded(model) as view:
        found, _ = view.transcribe(
            samples,
            **{**options, "temperature": temperature},
            vad_filter=False,
            without_timestamps=False,
            condition_on_previous_text=False,
            no_speech_threshold=None,  # judged here, where it is said out loud
        )
        return [s for s in drain(found) if any(c.isalnum() for c in s.text)]  # not ' .'


class Replica(NamedTuple):
    """How to load the model again (``LocalEngine`` notes it on the model it loads)."""

    source: str  # a folder, or a name faster-whisper has fetched already
    device: str
    compute_type: str
    threads: int

    def load(self) -> Any:
        """A new CTranslate2 Whisper with one worker, whose generator starts at ``SEED``."""
        import ctranslate2  # noqa: PLC0415 - with faster-whisper, an optional extra

        folder = self.source
        if not Path(folder).is_dir():
            from faster_whisper.utils import download_model  # noqa: PLC0415 - optional extra

            folder = download_model(folder, local_files_only=True)
        ctranslate2.set_random_seed(SEED)  # read at the new thread's first draw
        return ctranslate2.models.Whisper(
            folder,
            device=self.device,
            compute_type=self.compute_type,
            intra_threads=self.threads,
            inter_threads=1,
        )


_SAMPLING = threading.Lock()  # one replica at a time: each holds a copy of the weights


class Seeded:
    """The shared CTranslate2 model for one decode, but for its sampling calls: those go to
    a ``Replica`` loaded at the first of them and kept to the decode's end (``close``),
    so the decode's samples are drawn in order from a generator seeded for it. A replica
    that cannot be loaded (no memory for a second copy, the model's folder gone) leaves
    the sampling to the shared model, with a ``replica.failed`` warning (review16: the
    file failed, its words lost to keep them the same every run)."""

    def __init__(self, model: Any, replica: Replica) -> None:
        self._model = model
        self._replica = replica
        self._fresh: Any = None
        self._held = False  # a replica is loaded, and ``_SAMPLING`` taken for it

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def generate(self, *args: Any, **options: Any) -> Any:
        greedy = options.get("sampling_topk", 1) == 1 or options.get("sampling_temperature") == 0
        if greedy:  # beam search or argmax: draws nothing
            return self._model.generate(*args, **options)
        if self._fresh is None:
            self._fresh = self._loaded()
        return self._fresh.generate(*args, **options)

    def _loaded(self) -> Any:
        """A replica for this decode's sampling, or the shared model if none loads."""
        _SAMPLING.acquire()
        try:
            fresh = self._replica.load()
        except Exception as exc:  # ctranslate2's and the hub's errors have no common base
            _SAMPLING.release()
            log.warning(
                "replica.failed",
                error=f"{exc.__class__.__name__}: {exc}",
                action="sampled from the shared model: these words may differ from run to run",
            )
            return self._model
        except BaseException:
            _SAMPLING.release()
            raise
        self._held = True
        log.debug("replica.loaded", why="sampling", seed=SEED)
        return fresh

    def close(self) -> None:
        self._fresh = None  # a replica's worker thread joined, its weights freed
        if self._held:
            self._held = False
            heap.release()
            _SAMPLING.release()


@contextlib.contextmanager
def seeded(model: Any) -> Iterator[Any]:
    """``model`` (a faster-whisper ``WhisperModel``) with its sampling ``Seeded`` for one
    decode (this one's last resort; the whole of faster-whisper's own path, whose
    temperature fallback samples too); a model the engine did not load (no
    ``dropscribe_replica``) as it is."""
    replica = getattr(model, "dropscribe_replica", None)
    if replica is None:
        yield model
        return
    seeded = Seeded(model.model, replica)
    view = copy.copy(model)  # the same tokenizer, features and weights: only .model differs
    view.model = seeded
    try:
        yield view
    finally:
        seeded.close()


def by_window(found: Iterable[Any], view: Any) -> Iterator[Any]:
    """faster-whisper's sequential segments (``found``, decoded by ``view`` from
    ``seeded``) with the decode's replica given up as each window's segments come
    (review17): ``_SAMPLING`` is held for one window's sampling, not to the recording's
    end (another file's sampling waited for the whole of it: 25 s for a 2-s file), and
    each window that samples starts a replica from ``SEED``, so its words are still a
    function of the recording alone."""
    for segment in found:
        if isinstance(seeded := getattr(view, "model", None), Seeded):
            seeded.close()
        yield segment


def quietest(samples: npt.NDArray[np.float32]) -> int:
    """Where to halve a piece: the quietest 20 ms in its middle half (a pause, if any)."""
    frame = RATE // 50
    low, high = len(samples) // 4 // frame, 3 * len(samples) // 4 // frame
    if high <= low:
        return len(samples) // 2
    frames = samples[low * frame : high * frame].reshape(-1, frame)
    return int((low + int(np.argmin(np.square(frames).mean(axis=1)))) * frame)


def _warn(start: float, end: float, segment: Any) -> None:
    log.warning(
        "speech.unheard",
        start=round(float(start), 3),
        end=round(float(end), 3),
        text=None if segment is None else segment.text.strip(),
        no_speech_prob=None if segment is None else round(segment.no_speech_prob, 2),
        avg_logprob=None if segment is None else round(segment.avg_logprob, 2),
        action="left out: the VAD heard speech, every decode of it heard none",
    )

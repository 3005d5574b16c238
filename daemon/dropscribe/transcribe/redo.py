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
``SMALLEST_SECONDS``; there, faster-whisper's temperature fallback (0.0 to 1.0, sampling
seeded at load) has the last word. Only what that last decode too calls no speech is
left out, with a ``speech.unheard`` warning, never silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import structlog

from dropscribe.audio.transcode import RATE
from dropscribe.transcript import COMPRESSION, LOGPROB, NO_SPEECH

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    import numpy.typing as npt

    from dropscribe.transcribe.batched import Piece

log = structlog.get_logger("dropscribe")

SPARSE_CHARS = 4.0  # characters a second of speech below which words were lost
SMALLEST_SECONDS = 8.0  # a piece this short is not halved again
FALLBACK = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # faster-whisper's temperatures
SEED = 1  # CTranslate2's sampling seed, set when a model loads

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
    """A piece's segments (timed in its clip), or, where the batched pass decoded it
    badly, the piece decoded again (``again``)."""
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
    return again(model, piece.samples, 0.0, options, drain)


def again(
    model: Any,
    samples: npt.NDArray[np.float32],
    at: float,
    options: dict[str, Any],
    drain: Callable[[Iterable[Any]], Iterator[Any]],
) -> Found:
    """``samples`` (``at`` seconds into the recording) decoded again, as (offset, segment)."""
    smallest = len(samples) <= SMALLEST_SECONDS * RATE
    temperature = FALLBACK if smallest else 0.0
    found = _decode(model, samples, options, temperature, drain)
    if not smallest and (not found or any(flagged(s) for s in found)):
        half = quietest(samples)
        return [
            *again(model, samples[:half], at, options, drain),
            *again(model, samples[half:], at + half / RATE, options, drain),
        ]
    kept: Found = []
    for segment in found:
        if unheard(segment):
            _warn(at + segment.start, at + segment.end, segment)
        else:
            kept.append((at, segment))
    if not found:
        _warn(at, at + len(samples) / RATE, None)
    return kept


def _decode(
    model: Any,
    samples: npt.NDArray[np.float32],
    options: dict[str, Any],
    temperature: float | tuple[float, ...],
    drain: Callable[[Iterable[Any]], Iterator[Any]],
) -> list[Any]:
    found, _ = model.transcribe(
        samples,
        **{**options, "temperature": temperature},
        vad_filter=False,
        without_timestamps=False,
        condition_on_previous_text=False,
        no_speech_threshold=None,  # judged here, where it is said out loud
    )
    return [s for s in drain(found) if s.text.strip()]


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

"""The local engine's batched path: speech found by VAD, up to 30 s at a time, transcribed
a batch at a time by faster-whisper's ``BatchedInferencePipeline``.

The recording is decoded as a stream and taken ``WINDOW_SECONDS`` at a time, so memory
stays flat whatever its length (faster-whisper's own ``transcribe`` holds the whole
recording, twice over as a spectrogram: 820 MB for twelve minutes). In each window
Silero VAD (which faster-whisper ships) finds the speech over the whole window at once
(run 30 s at a time it cut and padded speech at every slice edge, and recall on the
paragraphs fell from 90.0 to 87.7 %); neighbouring speech is gathered into pieces
of at most ``CLIP_SECONDS``, and the window's last piece waits for the next window (it
may go on past the window's end). No piece ever starts or ends inside speech the VAD
heard. Only the pieces of the batches being transcribed are held, whichever windows they
came from (``schedule.batches``); on a CPU, ``OneByOne`` encodes and aligns a batch a
piece at a time, and ``schedule.in_order`` runs a batch on each core at once (one thread
each: no thread waits for another inside a step).
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import zlib
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from dropscribe.audio.transcode import RATE, Samples
from dropscribe.transcribe import heap

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    import numpy.typing as npt

WINDOW_SECONDS = 120
# The most the VAD hears at once: a whole window (with what waits from the last), as
# faster-whisper's pipeline hears a whole file (its buffers grow with what it hears).
VAD_SECONDS = 4 * WINDOW_SECONDS
CLIP_SECONDS = 30  # what Whisper hears at once
CUT_SECONDS = 26  # the longest part of speech cut where the VAD found no silence
PAUSE_SECONDS = 1.0  # a pause between words that ends a segment
# Silero's settings as BatchedInferencePipeline uses them: short silences split speech.
MIN_SILENCE_MS = 160
PAD_MS = 400  # Silero's padding each side of the speech it found (VadOptions' default)


class Piece(NamedTuple):
    """Speech to transcribe at once: the spans of speech the VAD found, side by side
    without the silence between them (as ``BatchedInferencePipeline`` feeds Whisper), so
    that 30 s of it is 30 s of words; where each span sits in the clip and in the
    recording; and the places in the clip where a pause of ``PAUSE_SECONDS`` or more was
    left out (a paragraph's end)."""

    samples: npt.NDArray[np.float32]
    starts: list[float]  # each span's start in the clip, seconds
    places: list[float]  # each span's start in the recording, seconds
    pauses: list[float]  # where, in the clip, a long pause was left out
    # Seconds of the VAD's padding (quiet) before each span's speech, where it is known
    # (0 where it is not: a span cut in speech, or one whose pad is half a short pause).
    leads: tuple[float, ...] = ()

    def place(self, at: float, *, end: bool = False) -> float:
        """The recording's time of the clip's ``at``; at a joint, an ``end`` is the end
        of the span before it, a start the start of the span after it."""
        k = (bisect.bisect_left if end else bisect.bisect_right)(self.starts, at) - 1
        k = max(k, 0)
        return self.places[k] + at - self.starts[k]

    def heard(self, start: float, end: float) -> float:
        """A word's start (clip seconds) out of the quiet padding before its span's
        speech: Whisper starts the first word after a pause in that pad, often at the
        clip's very start (400 ms before its sound). Moved to where the VAD heard the
        speech begin, if the word ends after that; otherwise as it was."""
        k = max(bisect.bisect_right(self.starts, start) - 1, 0)
        sound = self.starts[k] + (self.leads[k] if k < len(self.leads) else 0.0)
        return sound if start < sound < end else start


class Windows:
    """The speech of a recording, as pieces to transcribe, in the recording's order."""

    def __init__(self, path: Path) -> None:
        self.samples = Samples(path)
        self.heard = 0.0  # seconds of speech found
        self.leads: dict[int, int] = {}  # the window's spans' known padding (``padded``)

    def __iter__(self) -> Iterator[Piece]:
        blocks: list[npt.NDArray[np.int16]] = []
        held = 0
        start = 0  # the first held sample's place in the recording
        for block in self.samples:
            blocks.append(block)
            held += len(block)
            if held >= WINDOW_SECONDS * RATE:
                audio = np.concatenate(blocks)
                pieces = self._pieces(audio)
                # The last piece waits (it may go on); with none, the last second does.
                keep = pieces.pop()[0][0] if pieces else len(audio) - RATE
                yield from (_piece(audio, start, spans, self.leads) for spans in pieces)
                blocks, held, start = [audio[keep:]], len(audio) - keep, start + keep
        if held:
            audio = np.concatenate(blocks)
            pieces = self._pieces(audio)
            yield from (_piece(audio, start, spans, self.leads) for spans in pieces)

    def _pieces(self, audio: npt.NDArray[np.int16]) -> list[list[tuple[int, int]]]:
        """The window's pieces, each as its spans of speech (samples from the window's start)."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps  # noqa: PLC0415

        options = VadOptions(
            max_speech_duration_s=CLIP_SECONDS, min_silence_duration_ms=MIN_SILENCE_MS
        )
        step = VAD_SECONDS * RATE
        slices = [
            [
                (at + found["start"], at + found["end"])
                for found in get_speech_timestamps(_floats(audio[at : at + step]), options)
            ]
            for at in range(0, len(audio), step)
        ]
        heap.release()  # the VAD's buffers
        speech = joined(slices, step)
        self.heard += sum(end - begin for begin, end in speech) / RATE
        self.leads = padded(slices, step)  # this window's: its pieces go before the next
        return packed(speech, CLIP_SECONDS * RATE, CUT_SECONDS * RATE)


def padded(slices: list[list[tuple[int, int]]], step: int) -> dict[int, int]:
    """Each span's start (samples) where Silero's padding before its speech is known, and
    that padding: the whole ``PAD_MS`` where the span does not begin its slice's audio
    and does not touch the span before it (touching, the pad is half the pause)."""
    pad = PAD_MS * RATE // 1000
    leads: dict[int, int] = {}
    for n, found in enumerate(slices):
        last = n * step  # a span starting there may have been cut by the slice's edge
        for begin, end in found:
            if begin > last:
                leads[begin] = pad
            last = end
    return leads


def _piece(
    audio: npt.NDArray[np.int16],
    start: int,
    spans: list[tuple[int, int]],
    leads: dict[int, int] | None = None,
) -> Piece:
    lengths = [end - begin for begin, end in spans]
    starts = np.cumsum([0, *lengths[:-1]]) / RATE
    pauses = [
        float(starts[k + 1])
        for k, ((_, a), (b, _)) in enumerate(itertools.pairwise(spans))
        if b - a >= PAUSE_SECONDS * RATE
    ]
    return Piece(
        samples=_floats(np.concatenate([audio[begin:end] for begin, end in spans])),
        starts=starts.tolist(),
        places=[(start + begin) / RATE for begin, _ in spans],
        pauses=pauses,
        leads=tuple((leads or {}).get(begin, 0) / RATE for begin, _ in spans),
    )


def packed(
    speech: list[tuple[int, int]], longest: int, cut: int | None = None
) -> list[list[tuple[int, int]]]:
    """Speech in pieces of at most ``longest`` samples of speech, the silence between
    spans not counted (it is left out), in order: the way ``BatchedInferencePipeline``
    fills Whisper's 30 s. A span longer than that is cut first (``gathered``)."""
    pieces: list[list[tuple[int, int]]] = []
    held = longest + 1
    for span in speech:
        for begin, end in gathered([span], longest, cut):
            if held + end - begin > longest:
                pieces.append([])
                held = 0
            pieces[-1].append((begin, end))
            held += end - begin
    return pieces


def joined(slices: list[list[tuple[int, int]]], step: int) -> list[tuple[int, int]]:
    """The speech the VAD found slice by slice, one list: speech that runs over a slice's
    edge (it ends at the edge and the next begins there) is one again. Neighbours that
    merely touch are not joined: Silero's padding makes them touch whenever the silence
    between them is under 0.8 s, and joined they made units that never paired up in 30 s,
    or were cut in speech."""
    speech: list[tuple[int, int]] = []
    for n, found in enumerate(slices):
        edge = n * step
        for begin, end in found:
            if speech and begin == edge and speech[-1][1] == edge:
                speech[-1] = (speech[-1][0], end)
            else:
                speech.append((begin, end))
    return speech


def gathered(
    speech: list[tuple[int, int]], longest: int, cut: int | None = None
) -> list[tuple[int, int]]:
    """Neighbouring speech joined into pieces of at most ``longest`` samples. Speech
    longer than that (the VAD found no silence in it) is cut in equal parts of at most
    ``cut`` samples: a piece cut in speech right at the 30-s edge is what Whisper
    decodes worst (without timestamps it gave "This is" for 30 s of words)."""
    cut = cut or longest
    pieces: list[tuple[int, int]] = []
    for begin, end in speech:
        if pieces and end - pieces[-1][0] <= longest:
            pieces[-1] = (pieces[-1][0], end)
            continue
        if end - begin <= longest:
            pieces.append((begin, end))
            continue
        parts = -(-(end - begin) // cut)
        edges = [begin + (end - begin) * k // parts for k in range(parts + 1)]
        pieces.extend(itertools.pairwise(edges))
    return pieces


def at_pauses(segment: Any, pauses: list[tuple[float, float]]) -> list[Any]:
    """A segment of the batched pass (one a piece: it is decoded without timestamps) cut
    at the ``pauses`` the VAD heard in its piece, so that a paragraph's pause still starts
    a paragraph: each word goes to the side of the pause's middle its own middle is on,
    and no part reaches into a pause. Without word times, as it is."""
    words = segment.words or []
    if not words or not pauses:
        return [segment]
    middles = [(a + b) / 2 for a, b in pauses]
    sides: dict[int, list[Any]] = {}
    for word in words:
        sides.setdefault(bisect.bisect(middles, (word.start + word.end) / 2), []).append(word)
    if len(sides) == 1:
        return [segment]
    parts = []
    for k, said in sides.items():
        start = max(said[0].start, pauses[k - 1][1]) if k else said[0].start
        end = min(said[-1].end, pauses[k][0]) if k < len(pauses) else said[-1].end
        text = "".join(w.word for w in said)
        parts.append(
            dataclasses.replace(
                segment,
                start=start,
                end=max(start, end),
                text=text,
                words=said,
                tokens=[],
                compression_ratio=_compression(text),
            )
        )
    return parts


def decoded(
    model: Any,
    pieces: list[Piece],
    options: dict[str, Any],
    batch: int,
    drain: Callable[[Iterable[Any]], Iterator[Any]],
) -> tuple[list[list[tuple[float, Any]]], str | None]:
    """A batch of pieces through ``BatchedInferencePipeline`` in one call, side by side,
    each its own clip: each piece's segments as (offset, segment), timed in its clip and
    cut at its pauses (``at_pauses``), and the language. A pipeline a batch: it keeps
    state between the batch's pieces (the last word time), and batches run at once."""
    from faster_whisper import BatchedInferencePipeline  # noqa: PLC0415 - optional extra

    audio = np.concatenate([piece.samples for piece in pieces])
    begins = (np.cumsum([0] + [len(p.samples) for p in pieces]) / RATE).tolist()
    clips = [{"start": a, "end": b} for a, b in itertools.pairwise(begins)]
    found, info = BatchedInferencePipeline(model).transcribe(
        audio, **options, batch_size=batch, vad_filter=False, clip_timestamps=clips
    )
    each: list[list[Any]] = [[] for _ in pieces]
    for segment in drain(found):
        # The piece it came from, and so its place in the recording.
        n = bisect.bisect_right(begins, segment.start + 0.01) - 1
        each[min(max(n, 0), len(pieces) - 1)].append(segment)
    return [
        [
            (-begin, part)
            for s in said
            for part in at_pauses(s, [(begin + p, begin + p) for p in piece.pauses])
        ]
        for piece, begin, said in zip(pieces, begins, each, strict=False)
    ], info.language


def placed(piece: Piece, offset: float, segment: Any) -> Any:
    """A segment timed ``offset`` seconds into ``piece``'s clip, timed in the recording."""
    words = [
        dataclasses.replace(
            w,
            start=round(piece.place(piece.heard(offset + w.start, offset + w.end)), 3),
            end=round(piece.place(offset + w.end, end=True), 3),
        )
        for w in segment.words or ()
    ]
    start = piece.place(piece.heard(offset + segment.start, offset + segment.end))
    return dataclasses.replace(
        segment,
        start=round(start, 3),
        end=round(max(start, piece.place(offset + segment.end, end=True)), 3),
        words=words if segment.words is not None else None,
    )


def _compression(text: str) -> float:
    """Whisper's compression ratio of a text (faster-whisper's get_compression_ratio)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))


def _floats(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    return samples.astype(np.float32) / 32768.0


class OneByOne:
    """CTranslate2's Whisper, encoding and aligning a batch one piece at a time.

    On a CPU, batching pays in the decoder's search (a token at a time, small
    matrices), which stays batched. The encoder's matrices are large already, and its
    attention holds 54 MB a piece at once; alignment runs the whole decoder over every
    token with its vocabulary-wide output, about 25 MB a piece. Taken a piece at a
    time they cost the same time and a quarter of the memory (with ``heap``'s
    settings, the bench's peak RSS went from 680 to 379 MiB at batch 4, no slower).
    Encodings are the same; word alignments may move a frame or two, as a batch pads
    the shorter texts.
    """

    def __init__(self, model: Any) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, features: Any, **options: Any) -> Any:
        pieces = _split(features)
        if len(pieces) == 1:
            return self._model.encode(features, **options)
        encoded: list[npt.NDArray[np.float32]] = []
        for piece in pieces:
            encoded.append(np.asarray(self._model.encode(piece, **options)))
            heap.release()
        return _joined(encoded)

    def generate(self, *args: Any, **options: Any) -> list[Any]:
        try:
            return list(self._model.generate(*args, **options))
        finally:
            heap.release()

    def align(
        self,
        features: Any,
        start: list[int],
        tokens: list[list[int]],
        frames: int | list[int],
        **options: Any,
    ) -> list[Any]:
        pieces = _split(features)
        if len(pieces) == 1:
            return list(self._model.align(features, start, tokens, frames, **options))
        each = frames if isinstance(frames, list) else [frames] * len(pieces)
        found: list[Any] = []
        for piece, said, heard in zip(pieces, tokens, each, strict=True):
            found.extend(self._model.align(piece, start, [said], [heard], **options))
            heap.release()
        return found


def _split(features: Any) -> list[Any]:
    import ctranslate2  # noqa: PLC0415 - with faster-whisper, an optional extra

    array = np.asarray(features)
    if array.ndim < 3 or len(array) == 1:
        return [features]
    return [ctranslate2.StorageView.from_array(np.ascontiguousarray(a[None])) for a in array]


def _joined(arrays: list[npt.NDArray[np.float32]]) -> Any:
    import ctranslate2  # noqa: PLC0415

    return ctranslate2.StorageView.from_array(np.concatenate(arrays))

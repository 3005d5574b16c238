"""The local engine's look for speech the batched pass passed over without a sign.

Decoded without timestamps, Whisper may end a piece before its end: the last sentence
of a piece that repeats the words before it ("Emma approved the plan for the new office
after the break. Greta postponed the plan for the new office after the break.") came
back unsaid, the rest of the answer sound, so ``redo`` had nothing to flag (11 words of
one rendition of bench/local.py's sentences; 27 over three). The words' times show it: a
piece is the VAD's speech side by side (its pauses shortened to Silero's padding, under
a second), so a stretch of ``GAP_SECONDS`` in which no word was heard is speech nobody
listened to. Such a stretch is decoded again alone (``redo.again``: with timestamps, the
temperature fallback at the last, a ``speech.unheard`` warning if even that hears no
speech), prompted with the words the piece said just before it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from dropscribe.audio.transcode import RATE
from dropscribe.transcribe import redo

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from dropscribe.transcribe.batched import Piece

log = structlog.get_logger("dropscribe")

GAP_SECONDS = 2.0  # no word for this long, in a piece: speech that was passed over
PROMPT_WORDS = 60  # of the piece's own words before a gap, as its prompt

Found = list[tuple[float, Any]]  # (offset in the piece's clip, faster-whisper Segment)


def gaps(piece: Piece, said: Found) -> list[tuple[float, float]]:
    """The stretches of ``piece``'s clip (seconds) of ``GAP_SECONDS`` or more with no
    word heard in them; none where a segment came without word times."""
    if any(s.words is None for _, s in said):
        return []
    words = sorted((offset + w.start, offset + w.end) for offset, s in said for w in s.words)
    end = len(piece.samples) / RATE
    found, heard = [], 0.0
    for start, stop in [*words, (end, end)]:
        if start - heard >= GAP_SECONDS:
            found.append((heard, start))
        heard = max(heard, stop)
    return found


def filled(
    model: Any,
    piece: Piece,
    said: Found,
    options: dict[str, Any],
    drain: Callable[[Iterable[Any]], Iterator[Any]],
) -> Found:
    """``said`` (a piece's segments, timed in its clip), with what its gaps said when
    decoded again, in the order they were spoken."""
    extra: Found = []
    for begin, end in gaps(piece, said):
        log.info(
            "piece.redecoded",
            start=round(float(piece.place(begin)), 3),
            seconds=round(float(end - begin), 3),
            sign="no_words",
            value=round(float(end - begin), 2),
        )
        before = [w.word for offset, s in said for w in s.words if offset + w.end <= begin]
        prompt = "".join(before[-PROMPT_WORDS:]).strip() or options.get("initial_prompt")
        samples = piece.samples[int(begin * RATE) : int(end * RATE)]
        asked = {**options, "initial_prompt": prompt}
        extra += redo.again(model, samples, begin, asked, drain, piece.place)
    if not extra:
        return said
    return sorted([*said, *extra], key=lambda found: found[0] + found[1].start)

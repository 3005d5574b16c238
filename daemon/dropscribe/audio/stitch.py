"""Pure: the transcripts of a recording's chunks -> one transcript of the recording.

Following PROTOCOL.md section 5: segment and word times are shifted by the
chunk's offset on the source timeline and renumbered; whatever the overlap made
twice (a segment or word ending no later than what came before) is dropped;
text is joined with a space, and where a cut fell outside a pause the words
repeated across the junction are dropped too.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from dropscribe.transcript import Segment, Transcript, Word

if TYPE_CHECKING:
    from collections.abc import Callable

    from dropscribe.audio.split import Span

TOLERANCE = 0.1  # seconds: a segment ending this close to the last kept end is a repeat
PROMPT_CHARS = 800  # about 200 tokens: Whisper reads only the final 224 of a prompt
MOST_REPEATED = 6  # words an overlap can repeat
CUE_CHARS = 84  # two lines of 42 characters (PROTOCOL.md section 6.3)
CUE_SECONDS = 7.0  # the longest cue subtitle guidance allows


def stitch(
    parts: list[tuple[Span, Transcript]],
    total: float,
    place: Callable[[Span], tuple[float, float]] | None = None,
) -> Transcript:
    """One transcript from chunk transcripts in source order. With ``place`` (the sound
    of a span on the source timeline), a part without segments gets cues there."""
    segments: list[Segment] = []
    words: list[Word] = []
    texts: list[str] = []
    last_end = last_word = -1.0
    for span, answer in parts:
        part = answer if place is None else _placed(span, answer, place)
        kept: list[Segment] = []
        for seg in part.segments:
            start, end = seg["start"] + span.start, seg["end"] + span.start
            if end <= last_end + TOLERANCE:
                continue
            kept.append(Segment(**{**seg, "start": round(start, 3), "end": round(end, 3)}))
        # The junction looks at the last MOST_REPEATED words: the texts that hold them (each
        # has a word), not all the text so far again for every chunk.
        if kept and span.cut > 0 and not span.pause:
            kept[0]["text"] = _junction(" ".join(texts[-MOST_REPEATED:]), kept[0]["text"])
        for item in kept:
            item["id"] = len(segments)
            segments.append(item)
            last_end = item["end"]
        for word in part.words:
            start, end = word["start"] + span.start, word["end"] + span.start
            if end <= last_word + 0.01:
                continue
            words.append(Word(word=word["word"], start=round(start, 3), end=round(end, 3)))
            last_word = end
        if part.segments:
            text = " ".join(s["text"].strip() for s in kept if s["text"].strip())
        elif span.cut > 0 and not span.pause:
            text = _junction(" ".join(texts[-MOST_REPEATED:]), part.text)
        else:
            text = part.text
        if text.strip():
            texts.append(text.strip())
    language = next((t.language for _, t in parts if t.language), None)
    return Transcript(
        text=" ".join(texts),
        language=language,
        duration=round(total, 3),
        segments=tuple(segments),
        words=tuple(words),
        request_id=parts[-1][1].request_id if parts else None,
    )


def _placed(
    span: Span, part: Transcript, place: Callable[[Span], tuple[float, float]]
) -> Transcript:
    """``part`` with cues where its span has sound, if it came without segments."""
    if part.segments or not part.text.strip():
        return part
    first, last = place(span)
    timed = divide(part.text, first - span.start, last - span.start)
    return Transcript(part.text, part.language, part.duration, timed, request_id=part.request_id)


def divide(text: str, start: float, end: float) -> tuple[Segment, ...]:
    """Text without times, spread over [start, end] as cues of at most CUE_CHARS, broken
    between words (text without spaces, between characters), each timed in proportion
    to its characters, and no longer than CUE_SECONDS where the words allow. The segments
    say their timing is estimated."""
    length = len(" ".join(text.split()))
    budget = min(CUE_CHARS, max(1, math.ceil(length / math.ceil((end - start) / CUE_SECONDS))))
    pieces: list[str] = []
    for token in text.split():
        whole = len(token) - 1 - (len(token) - 1) % CUE_CHARS  # where its last piece starts
        pieces += (token[at : at + CUE_CHARS] for at in range(0, whole, CUE_CHARS))
        word = token[whole:]  # CJK, or a very long token, cut without copying the rest
        if pieces and len(pieces[-1]) + 1 + len(word) <= budget:
            pieces[-1] += " " + word
        else:
            pieces.append(word)
    total = sum(len(p) for p in pieces) or 1
    out: list[Segment] = []
    at = start
    for n, piece in enumerate(pieces):
        step = (end - start) * len(piece) / total
        out.append(
            Segment(
                id=n, start=round(at, 3), end=round(at + step, 3), text=piece, timing="estimated"
            )
        )
        at += step
    return tuple(out)


def _norm(word: str) -> str:
    return re.sub(r"\W", "", word.lower())


def _junction(before: str, after: str) -> str:
    """``after`` without the words that repeat the end of ``before``."""
    tail = [_norm(w) for w in before.split()[-MOST_REPEATED:]]
    head = after.split()
    for count in range(min(len(tail), len(head)), 0, -1):
        if tail[-count:] == [_norm(w) for w in head[:count]] and any(tail[-count:]):
            return " ".join(head[count:])
    return after


def carried_prompt(prompt: str | None, previous: str) -> str:
    """The folder's prompt, then as much of the previous chunk's end as fits (~200 tokens)."""
    room = max(200, PROMPT_CHARS - len(prompt or ""))
    tail = previous[-room:]
    if len(previous) > room and " " in tail:
        tail = tail.split(" ", 1)[1]  # start at a word
    return f"{prompt} {tail}".strip() if prompt else tail.strip()

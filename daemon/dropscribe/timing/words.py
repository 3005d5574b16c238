"""Pure: an answer's words as the sidecars will have them, and segments made from them.

The words are the answer's own, split where it put spaces; a diarized answer's speaker
labels go with the words of each of its segments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe.transcript import Segment, Transcript, Word

if TYPE_CHECKING:
    from collections.abc import Sequence

SENTENCE_END = (".", "?", "!", "\u2026", "\u3002", "\uff1f", "\uff01")  # and CJK ones
PAUSE = 0.8  # seconds of quiet between words that end a segment
SENTENCE_PAUSE = 0.3  # ... after a sentence's end
SEGMENT_SECONDS = 20.0  # the longest a made segment runs, cut at a sentence end if it can


def answered(transcript: Transcript) -> list[tuple[str, str | None]]:
    """Each word of the answer, in order, with its speaker where the answer said one."""
    spoken = [seg for seg in transcript.segments if seg["text"].split()]
    if spoken:
        return [(w, seg.get("speaker")) for seg in spoken for w in seg["text"].split()]
    return [(w, None) for w in transcript.text.split()]


def with_times(
    transcript: Transcript,
    said: Sequence[tuple[str, str | None]],
    times: Sequence[tuple[float, float]],
    duration: float,
) -> Transcript:
    """``transcript`` with ``said`` as its words at ``times``; its own segments re-timed
    to their words, or segments made from the words where it had none."""
    words: list[Word] = []
    for (text, who), (start, end) in zip(said, times, strict=True):
        word = Word(word=" " + text, start=start, end=end)
        if who is not None:
            word["speaker"] = who
        words.append(word)
    spoken = [seg for seg in transcript.segments if seg["text"].split()]
    if spoken:
        segments: list[Segment] = []
        at = 0
        for seg in spoken:
            count = len(seg["text"].split())
            mine = words[at : at + count]
            at += count
            item = Segment(**{k: v for k, v in seg.items() if k != "timing"})  # type: ignore[typeddict-item]
            item["id"] = len(segments)
            item["start"], item["end"] = mine[0]["start"], mine[-1]["end"]
            segments.append(item)
    else:
        segments = made(words)
    return Transcript(
        text=transcript.text,
        language=transcript.language,
        duration=transcript.duration if transcript.duration is not None else round(duration, 3),
        segments=tuple(segments),
        words=tuple(words),
        request_id=transcript.request_id,
    )


def made(words: Sequence[Word]) -> list[Segment]:
    """Segments of ``words``: broken at pauses, at sentence ends with a pause after them,
    and before SEGMENT_SECONDS (at the last sentence end if there was one)."""
    segments: list[Segment] = []
    run: list[Word] = []

    def close(upto: int) -> None:
        part, rest = run[:upto], run[upto:]
        text = " ".join(w["word"].strip() for w in part)
        segments.append(
            Segment(id=len(segments), start=part[0]["start"], end=part[-1]["end"], text=text)
        )
        run[:] = rest

    for word in words:
        if run:
            gap = word["start"] - run[-1]["end"]
            ended = run[-1]["word"].rstrip().endswith(SENTENCE_END)
            if gap >= PAUSE or (ended and gap >= SENTENCE_PAUSE):
                close(len(run))
            elif word["end"] - run[0]["start"] > SEGMENT_SECONDS:
                ends = [
                    n + 1 for n, w in enumerate(run) if w["word"].rstrip().endswith(SENTENCE_END)
                ]
                close(ends[-1] if ends else len(run))
        run.append(word)
    if run:
        close(len(run))
    return segments

"""Pure: the segments an engine itself marks as likely invented, taken out of what people read.

Whisper models write text into silence ("Thank you.", a repeat of the last words). Two
signs are the engine's own (faster-whisper and the OpenAI-shaped servers report them):
a segment it thinks holds no speech that it also decoded with low confidence, and a
segment whose text compresses too well (a loop). A third is the shape of the usual
ending: the same words again at the very end. The txt, srt, vtt, lrc, tsv and md
sidecars leave such segments out; json and verbose_json keep the engine's full answer.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

from dropscribe.transcript import COMPRESSION, LOGPROB, NO_SPEECH

if TYPE_CHECKING:
    from collections.abc import Iterable

    from dropscribe.transcript import Segment, Transcript

TAIL_SECONDS = 30.0  # where a repeat of the words before is taken for an invention


class Dropped(NamedTuple):
    start: float
    end: float
    text: str
    why: str


def trim(transcript: Transcript) -> tuple[Transcript, list[Dropped]]:
    """The transcript without its likely inventions, and what was taken out."""
    if not transcript.segments:
        return transcript, []
    end = max(transcript.duration or 0.0, transcript.segments[-1]["end"])
    kept: list[Segment] = []
    dropped: list[Dropped] = []
    before: list[str] | None = None  # the words of the last segment kept, read once
    for seg in transcript.segments:
        why = _invented(seg, before, end)
        if why is None:
            kept.append(seg)
            before = _words(seg["text"])
        else:
            dropped.append(Dropped(seg["start"], seg["end"], seg["text"].strip(), why))
    if not dropped:
        return transcript, []
    gone = _merged((d.start, d.end) for d in dropped)
    starts = [a for a, _ in gone]
    words = tuple(
        w for w in transcript.words if not _inside((w["start"] + w["end"]) / 2, gone, starts)
    )
    spaced = " " in transcript.text.strip() or not transcript.text.strip()
    text = (" " if spaced else "").join(s["text"].strip() for s in kept if s["text"].strip())
    return replace(transcript, text=text, segments=tuple(kept), words=words), dropped


def _merged(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The union of the closed intervals ``spans``, as sorted disjoint intervals."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _inside(t: float, spans: list[tuple[float, float]], starts: list[float]) -> bool:
    """Whether ``t`` lies in one of the sorted disjoint ``spans`` (``starts``: theirs)."""
    n = bisect.bisect_right(starts, t) - 1
    return n >= 0 and t <= spans[n][1]


def _invented(seg: Segment, before: list[str] | None, end: float) -> str | None:
    """Why ``seg`` is likely invented, or None; ``before``: the words of the last segment
    kept (read once, however many dropped segments follow it)."""
    no_speech = seg.get("no_speech_prob")
    logprob = seg.get("avg_logprob")
    if (
        no_speech is not None
        and logprob is not None
        and no_speech > NO_SPEECH
        and logprob < LOGPROB
    ):
        return f"no speech likely ({no_speech:.2f}), decoded unsure ({logprob:.2f})"
    ratio = seg.get("compression_ratio")
    if isinstance(ratio, int | float) and ratio > COMPRESSION:
        return f"repetitive (compression ratio {ratio:.1f})"
    if before is not None and seg["start"] >= end - TAIL_SECONDS:
        mine = _words(seg["text"])
        if mine and before[-len(mine) :] == mine:
            return "repeats the words before it at the end of the recording"
    return None


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())

"""Pure: where to cut a long recording, from its loudness envelope.

Peers cut at fixed durations or sizes, mid-word. Here each cut goes into the
longest pause near the ideal position (chunks of about equal length), at the
middle of that pause; only when no pause exists nearby does it fall back to
the quietest moment. Every chunk after the first starts ``overlap`` seconds
before its cut, so a word the cut clipped is heard whole once; the stitcher
drops what the overlap made twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FRAME = 0.01  # seconds per envelope value
FLOOR_DB = -100.0  # digital silence
MIN_PAUSE = 0.2  # seconds: shorter quiet stretches are gaps inside words
LONG_PAUSE = 1.0  # seconds: pauses at least this long count as equally good cuts
OVERLAP = 0.5  # seconds each chunk repeats of the one before
REACH = 0.15  # how far a cut may move from its ideal place, as a share of the chunk length
PAD = 0.1  # seconds of quiet kept before and after the sound of a span
MAX_REACH = 30.0  # seconds: speech pauses far more often; even chunks finish together


@dataclass(frozen=True)
class Span:
    """One chunk on the source timeline, in seconds; ``cut`` is where it begins to count."""

    start: float
    end: float
    cut: float  # start + overlap (or 0 for the first chunk)
    pause: bool = True  # whether the cut before it fell in a pause

    @property
    def seconds(self) -> float:
        return self.end - self.start


def loudness(samples: npt.NDArray[np.int16], rate: int) -> npt.NDArray[np.float32]:
    """dBFS per FRAME of mono 16-bit samples (a trailing partial frame is dropped)."""
    per = round(rate * FRAME)
    frames = len(samples) // per
    if frames == 0:
        return np.empty(0, dtype=np.float32)
    block = samples[: frames * per].astype(np.float32).reshape(frames, per) / 32768.0
    rms = np.sqrt(np.mean(block * block, axis=1))
    levels: npt.NDArray[np.float32] = np.maximum(
        20 * np.log10(np.maximum(rms, 1e-10)), FLOOR_DB
    ).astype(np.float32)
    return levels


def threshold(envelope: npt.NDArray[np.float32]) -> float:
    """The level under which a frame is a pause: 10 dB over the noise floor, at most -30 dBFS."""
    if len(envelope) == 0:
        return FLOOR_DB
    floor = float(np.percentile(envelope, 10))
    return min(floor + 10.0, -30.0)


def voiced(
    envelope: npt.NDArray[np.float32], level: float, start: float, end: float
) -> tuple[float, float]:
    """From the first to the last sound in [start, end] (a little padded); the whole
    span when it is all quiet."""
    lo, hi = int(start / FRAME), max(int(end / FRAME), int(start / FRAME) + 1)
    loud = np.flatnonzero(envelope[lo:hi] >= level)
    if len(loud) == 0:
        return start, end
    first = max(start, (lo + int(loud[0])) * FRAME - PAD)
    last = min(end, (lo + int(loud[-1]) + 1) * FRAME + PAD)
    return round(first, 3), round(max(last, first), 3)


def sound_seconds(
    envelope: npt.NDArray[np.float32], level: float, start: float, end: float
) -> float:
    """How many seconds of [start, end] are at or above ``level`` (not a pause)."""
    lo, hi = int(start / FRAME), int(end / FRAME)
    return float(np.count_nonzero(envelope[lo:hi] >= level)) * FRAME


def pauses(quiet: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Runs of quiet frames as (first, end) frame indexes, at least MIN_PAUSE long."""
    padded = np.concatenate(([False], quiet, [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    runs = edges.reshape(-1, 2)
    shortest = round(MIN_PAUSE / FRAME)
    return [(int(a), int(b)) for a, b in runs if b - a >= shortest]


def plan(
    envelope: npt.NDArray[np.float32],
    total: float,
    target: float,
    longest: float,
    *,
    parallel: int = 1,
    overlap: float = OVERLAP,
) -> list[Span]:
    """Chunks of about ``target`` seconds, none longer than ``longest``, cut in pauses.

    The recording is first divided into equal parts: one when it is no longer than
    1.2 x ``target``; when there are more parts than ``parallel`` uploads at once, a
    multiple of that, so the last round of uploads is not one straggler. Then each cut
    moves into the best pause within REACH of its place (or twice that, if need be).
    """
    part = min(target * 1.2, (longest - overlap) / (1 + 2 * REACH))
    if total <= part:
        return [Span(0.0, total, 0.0)]
    count = math.ceil(total / part)
    if count > parallel > 1:
        count = math.ceil(count / parallel) * parallel
    spacing = total / count
    reach = min(max(spacing * REACH, 2.0), MAX_REACH)
    runs = pauses(envelope < threshold(envelope))
    smooth = envelope
    if len(envelope):
        smooth = np.convolve(envelope, np.ones(10) / 10, mode="same").astype(np.float32)
    spans: list[Span] = []
    start = cut = 0.0
    found = True
    for k in range(1, count):
        ideal = k * spacing
        for wide in (reach, 2 * reach):  # no pause near: look twice as far before giving up
            low = max(cut + spacing / 2, ideal - wide)
            high = max(min(ideal + wide, start + longest - 0.01), low + FRAME)
            pick, found_here = _best_cut(runs, smooth, low, high, ideal)
            if found_here:
                break
        spans.append(Span(start, pick, cut, found))
        found = found_here
        cut = pick
        start = max(0.0, pick - overlap)
    spans.append(Span(start, total, cut, found))
    return spans


def _best_cut(
    runs: list[tuple[int, int]],
    smooth: npt.NDArray[np.float32],
    low: float,
    high: float,
    ideal: float,
) -> tuple[float, bool]:
    """The middle of the longest pause reaching into [low, high] (nearest ``ideal`` among
    equals; kept inside the window), or the quietest moment there when no pause is; and
    whether it was a pause."""
    best: tuple[float, float] | None = None
    pick = ideal
    for first, end in runs:
        a, b = first * FRAME, end * FRAME
        if min(b, high) - max(a, low) < MIN_PAUSE:
            continue
        middle = min(max((a + b) / 2, low + MIN_PAUSE / 2), high - MIN_PAUSE / 2)
        score = (min(round(b - a, 1), LONG_PAUSE), -abs(middle - ideal))
        if best is None or score > best:
            best, pick = score, middle
    if best is not None:
        return round(pick, 2), True
    lo, hi = int(low / FRAME), max(int(high / FRAME), int(low / FRAME) + 1)
    window = smooth[lo:hi]
    if len(window) == 0:
        return round(min(max(ideal, low), high), 2), False
    return round((lo + int(np.argmin(window))) * FRAME, 2), False

"""Pure: a boundary the aligner put too early between two words said without a pause.

The alignment heads place most boundaries in running speech a little late (about
100 ms, measured on espeak-ng speech with tiny.en), and now and then one far too early:
at the closure of a stop inside the word before ("forgot|ten when"), leaving that word
half its length and the next one twice its own. A cue ending with that word then
disappears while it is still being said. Where two words run on into each other and
the first got much less of their time than its letters ask for, the boundary moves
later, a third of the way to where the letters would put it. It never moves earlier: an early
end is the error a reader sees.

Letters against the next word alone ask for that at nearly every other boundary ("detailed
plan", "Friday so": a long word, then a short one the aligner gives its usual 100 ms late
start), and moving them all put cue starts in running speech later still. So a boundary
moves only where the first word is short and the second long against the recording's own
pace too (the median seconds a letter, a letter more for each word): on 38 renditions
of running speech it moved 570 words against 1453, and no cue ended early on any.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dropscribe.audio import split

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

FRAME = split.FRAME
SHORT = 0.8  # the first word has under this share of what its letters ask for
SHARE = 0.35  # the boundary moves this share of the way to where the letters put it
QUIET_FRAMES = 10  # a run of quiet this long between the words: a pause, not running on
OWN_SHORT = 0.8  # the first word has under this share of what the recording's pace asks for
OWN_LONG = 1.3  # and the second over this many times what the pace asks for
EXTRA_LETTERS = 1  # the pace asks for a word's letters and this many more


def evened(
    times: Sequence[tuple[float, float]],
    words: Sequence[str],
    loud: npt.NDArray[np.bool_],
) -> list[tuple[float, float]]:
    """``times`` of ``words`` (in order) with each too-early boundary in running speech
    moved later; every other time as it was."""
    out = [(float(a), float(b)) for a, b in times]
    letter = _per_letter(out, words)
    for n in range(len(out) - 1):
        (start, end), (after, finish) = out[n], out[n + 1]
        if abs(end - after) > FRAME or finish <= start or _paused(loud, start, finish):
            continue
        first, second = _letters(words[n]), _letters(words[n + 1])
        fair = start + (finish - start) * first / (first + second)
        if end - start >= SHORT * (fair - start):
            continue
        if end - start >= OWN_SHORT * letter * (first + EXTRA_LETTERS):
            continue  # as long as the recording's pace asks: the next word is short
        if finish - after <= OWN_LONG * letter * (second + EXTRA_LETTERS):
            continue
        moved = round(end + SHARE * (fair - end), 3)
        out[n], out[n + 1] = (start, moved), (moved, finish)
    return out


def _per_letter(times: Sequence[tuple[float, float]], words: Sequence[str]) -> float:
    """The recording's pace: the median seconds a letter (a letter more for each word)."""
    if not times:
        return 0.0
    spans = [
        (b - a) / (_letters(w) + EXTRA_LETTERS) for (a, b), w in zip(times, words, strict=False)
    ]
    return float(np.median(spans))


def _letters(word: str) -> int:
    return max(1, sum(c.isalnum() for c in word))


def _paused(loud: npt.NDArray[np.bool_], start: float, end: float) -> bool:
    """Whether [start, end] holds a run of QUIET_FRAMES quiet frames or more."""
    quiet = ~loud[max(0, round(start / FRAME)) : max(0, round(end / FRAME))]
    if len(quiet) < QUIET_FRAMES:
        return False
    runs = np.convolve(quiet.astype(np.int32), np.ones(QUIET_FRAMES, dtype=np.int32), "valid")
    return bool(np.any(runs >= QUIET_FRAMES))

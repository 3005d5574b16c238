"""Pure: a recording's words timed window by window, by an aligner given from outside.

The local model aligns at most ``LONGEST`` seconds at a time. The recording is cut into
windows at pauses (the latest pause that leaves the window as full as it can be), and
each window is aligned against the words not yet timed: as many as its sound holds at
the recording's own pace, plus a margin. Only the words timed well inside the window
(ending ``GUARD`` seconds before its end) are kept; the rest are carried on, and the next
window starts where the last kept word ends, so a word the margin got wrong is aligned
again with its own sound. The last window takes every word left. Every word is timed
once, in order, whatever the aligner answers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from dropscribe.audio import split

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy.typing as npt

    # (window start, window end, words) -> a (start, end) for each of the first words,
    # in seconds of the recording; fewer than given when the rest do not fit
    Aligner = Callable[[float, float, Sequence[str]], list[tuple[float, float]]]

FRAME = split.FRAME
LONGEST = 30.0  # seconds: what the model sees at once
SHORTEST_WINDOW = 15.0  # seconds: a window is cut at a pause no earlier than this
GUARD = 1.5  # seconds before a window's end: words ending after it are timed again
MARGIN, EXTRA = 1.3, 8  # words offered: the pace's share times MARGIN, plus EXTRA
LEAD = 0.1  # seconds of quiet kept before a window's first sound


def timed(
    words: Sequence[str],
    loud: npt.NDArray[np.bool_],
    align: Aligner,
    *,
    longest: float = LONGEST,
) -> list[tuple[float, float]]:
    """A (start, end) for every word of ``words`` against the recording whose 10 ms frames
    are ``loud`` (True: sound), in order."""
    total = len(loud) * FRAME
    if not words:
        return []
    sound = max(float(np.count_nonzero(loud)) * FRAME, 1.0)
    pace = len(words) / sound  # words a second of sound
    quiet = split.pauses(~loud)
    out: list[tuple[float, float]] = []
    at = 0.0
    while len(out) < len(words):
        start = _next_sound(loud, at)
        end, last = _window_end(quiet, start, total, longest)
        left = words[len(out) :]
        if not last:
            heard = float(np.count_nonzero(loud[round(start / FRAME) : round(end / FRAME)]))
            offered = math.ceil(pace * heard * FRAME * MARGIN) + EXTRA
            left = left[:offered]
        found = _checked(align(start, end, left), start, end, len(left))
        if last:
            out += found + _spread(len(left) - len(found), found, start, end)
            break
        kept = _kept(found, end, longest)
        out += found[:kept]
        at = found[kept - 1][1] if kept else end
        at = max(at, start + FRAME)  # always onwards
    return _ordered(out, total)


def _next_sound(loud: npt.NDArray[np.bool_], at: float) -> float:
    """Where the next window starts: a little before the first sound at or after ``at``."""
    first = round(at / FRAME)
    ahead = np.flatnonzero(loud[first:])
    if len(ahead) == 0:
        return at
    return max(at, (first + int(ahead[0])) * FRAME - LEAD)


def _window_end(
    quiet: list[tuple[int, int]], start: float, total: float, longest: float
) -> tuple[float, bool]:
    """Where the window from ``start`` ends (the middle of the latest pause that keeps it
    within ``longest``, else ``longest`` on), and whether it is the last."""
    if total - start <= longest:
        return total, True
    low, high = start + min(SHORTEST_WINDOW, longest / 2), start + longest
    middles = [(a + b) / 2 * FRAME for a, b in quiet]
    fitting = [m for m in middles if low <= m <= high]
    return (max(fitting) if fitting else high), False


def _checked(
    found: list[tuple[float, float]], start: float, end: float, offered: int
) -> list[tuple[float, float]]:
    """The aligner's answer held to the window, in order, no more than was offered."""
    out: list[tuple[float, float]] = []
    for a, b in found[:offered]:
        first = min(max(a, start, out[-1][0] if out else start), end)
        out.append((first, min(max(b, first), end)))
    return out


def _kept(found: list[tuple[float, float]], end: float, longest: float) -> int:
    """How many of the first words of a window (not the last) are timed well inside it."""
    guard = min(GUARD, longest / 4)
    kept = 0
    while kept < len(found) and found[kept][1] <= end - guard:
        kept += 1
    return kept


def _spread(
    count: int, found: list[tuple[float, float]], start: float, end: float
) -> list[tuple[float, float]]:
    """Times for ``count`` words the aligner could not take, evenly after the last it did."""
    if count <= 0:
        return []
    begin = found[-1][1] if found else start
    step = max(0.0, end - begin) / count
    return [(begin + n * step, begin + (n + 1) * step) for n in range(count)]


def _ordered(times: list[tuple[float, float]], total: float) -> list[tuple[float, float]]:
    """Starts that never go back, ends never before their start, all within the recording."""
    out: list[tuple[float, float]] = []
    for a, b in times:
        first = min(max(a, out[-1][0] if out else 0.0, 0.0), total)
        out.append((round(first, 3), round(min(max(b, first), total), 3)))
    return out

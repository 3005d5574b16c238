"""Pure: word times snapped to speech onsets and offsets in a loudness envelope.

An aligner or an engine places a word start within a few frames of its sound, often
early into the pause before it or late inside it. Where the envelope shows the sound
begin within ``REACH`` of the word's start (and after the word before it began), the
start moves there; a word's end moves to where its sound stops (back out of a pause
after it, or on to the pause where its sound runs on), never past the next word's
start. Connected speech (no quiet between words) is left as it was timed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dropscribe.audio import split

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

FRAME = split.FRAME
REACH = 0.3  # seconds a start or an end may move
SHORTEST = 0.05  # seconds a word keeps, however its edges move
STOP_FRAMES = 10  # frames of quiet (100 ms) under which quiet is a stop consonant's closure
PAUSE_FRAMES = 15  # frames of quiet (150 ms) inside a word's time: a pause, not a stop
SPEECH_RANGE_DB = 40.0  # quieter than the loud end of the recording by this: not speech
# An end comes back out of quiet only to audible sound: over the quietest frames by
# AUDIBLE_DB, within AUDIBLE_RANGE_DB of the loud ones (a final stop's release is 20 dB
# under the vowel, and under the loud threshold in breathy voices).
AUDIBLE_DB, AUDIBLE_RANGE_DB = 6.0, 45.0
PIECE = 60.0  # seconds of samples made floats at a time (all at once: 4x the samples)


def loud_frames(pcm: npt.NDArray[np.int16], rate: int) -> npt.NDArray[np.bool_]:
    """Per 10 ms frame of ``pcm``: whether it holds sound (over the noise floor by 10 dB,
    and within SPEECH_RANGE_DB of the recording's loud frames)."""
    return frames(pcm, rate)[0]


def frames(
    pcm: npt.NDArray[np.int16], rate: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Per 10 ms frame of ``pcm``: whether it is loud (``loud_frames``), and whether it is
    audible at all (AUDIBLE_DB over the quietest frames, within AUDIBLE_RANGE_DB of the
    loud ones): a stop's release or a word's fading tail is audible, rarely loud."""
    per = round(rate * FRAME) * round(PIECE / FRAME)  # whole frames a piece
    parts = [split.loudness(pcm[at : at + per], rate) for at in range(0, len(pcm), per)]
    envelope = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    if len(envelope) == 0:
        return np.zeros(0, dtype=np.bool_), np.zeros(0, dtype=np.bool_)
    top = float(np.percentile(envelope, 95))
    level = max(split.threshold(envelope), top - SPEECH_RANGE_DB)
    faint = max(float(np.percentile(envelope, 5)) + AUDIBLE_DB, top - AUDIBLE_RANGE_DB)
    return np.asarray(envelope >= level), np.asarray(envelope >= min(faint, level))


def snapped(
    times: Sequence[tuple[float, float]],
    loud: npt.NDArray[np.bool_],
    audible: npt.NDArray[np.bool_] | None = None,
) -> list[tuple[float, float]]:
    """``times`` (start, end per word, in order) with each edge moved to the sound's edge
    nearby: starts to ``loud`` sound, ends to ``audible`` sound (``loud`` if not given);
    the result is in order, each word at least SHORTEST long where it can be."""
    heard = loud if audible is None else audible
    out: list[tuple[float, float]] = []
    count = len(loud)
    reach = round(REACH / FRAME)
    for n, (start, end) in enumerate(times):
        before = out[-1][0] if out else -1.0
        after = times[n + 1][0] if n + 1 < len(times) else count * FRAME
        first = _onset(loud, int(start / FRAME), reach)
        begin = start if first is None else first * FRAME
        if begin <= before + SHORTEST or begin >= max(end, start + SHORTEST):
            begin = start
        # A word's sound runs on to the quiet before the next word, however far that is.
        # ... and an end in the quiet comes back to its sound, however long the quiet.
        since = int(max(before, 0.0) / FRAME)
        stop = int(np.ceil(end / FRAME))
        # An end just inside the next word's sound, across a pause: back to the pause.
        gap = _last_pause(heard, int(begin / FRAME) + 1, stop)
        if gap is not None and stop - gap[1] <= reach:
            stop = gap[0] + 1
        last = _offset(heard, stop, since, int(after / FRAME))
        finish = end if last is None else last * FRAME
        if last is not None and finish < begin + SHORTEST:
            # placed in the pause after its sound: the whole word comes back to that sound
            first = _onset(loud, last - 1, reach)
            begin = max(before, finish - SHORTEST if first is None else first * FRAME)
        if finish > max(after, end) or finish < begin + SHORTEST:
            finish = end
        begin = max(begin, before)
        out.append((round(begin, 3), round(max(finish, begin), 3)))
    # No word ends after the next one starts.
    for n in range(len(out) - 1):
        start, end = out[n]
        if end > out[n + 1][0]:
            out[n] = (start, max(start, out[n + 1][0]))
    return out


def _onset(loud: npt.NDArray[np.bool_], at: int, reach: int) -> int | None:
    """The frame where the sound around frame ``at`` begins: forward to the next loud
    frame if ``at`` is quiet, back to the start of its loud run if it is loud; None
    when that is further than ``reach`` frames (or the run has no start nearby)."""
    count = len(loud)
    if not 0 <= at < count:
        return None
    if not loud[at]:
        ahead = np.flatnonzero(loud[at : at + reach + 1])
        return at + int(ahead[0]) if len(ahead) else None
    lo = max(0, at - reach)
    quiet = np.flatnonzero(~loud[lo:at])
    if len(quiet) == 0:
        return 0 if lo == 0 else None
    if _stop_closure(loud, lo + int(quiet[-1])):
        # A stop's closure inside speech ("pre|pare a"): the sound before it is still
        # this word's or the last one's, so the start stays where it was timed (moving
        # back to the closure took the last word's end with it).
        return None
    return lo + int(quiet[-1]) + 1


def _offset(loud: npt.NDArray[np.bool_], at: int, since: int, until: int) -> int | None:
    """The frame after the sound around frame ``at`` ends: back to just after the last
    loud frame if frame ``at - 1`` is quiet (None when there is none from frame
    ``since``, the word's start), forward to the end of its loud run if it is loud (None
    when that run goes on past frame ``until``, the next word's start)."""
    count = len(loud)
    if not 0 < at <= count:
        return None
    if not loud[at - 1]:
        if _stop_closure(loud, at - 1):
            # inside speech ("forgot|ten"): no pause to come back out of; but a final
            # stop's release ("wee|k") that ends before the next word is this word's
            return _released(loud, at - 1, until)
        lo = max(0, min(since, at - 1))
        behind = np.flatnonzero(loud[lo:at])
        return lo + int(behind[-1]) + 1 if len(behind) else None
    quiet = np.flatnonzero(~loud[at : until + 1])
    if len(quiet) == 0:
        return count if until >= count else None
    stop = at + int(quiet[0])
    if _stop_closure(loud, stop):  # the quiet is a closure: its release may be this word's
        return _released(loud, stop, until) or stop
    return stop


def _released(loud: npt.NDArray[np.bool_], at: int, until: int) -> int | None:
    """The frame after the sound that follows the stop closure at quiet frame ``at``,
    if that sound ends (in quiet, or at the recording's end) by frame ``until``, the
    next word's start: the release of a word's final stop, which Whisper leaves out of
    the word (its end in the closure, 60-100 ms early). None if it runs on."""
    count = len(loud)
    sound = at + int(np.argmax(loud[at:]))
    quiet = np.flatnonzero(~loud[sound : until + 1])
    if len(quiet) == 0:
        return count if until >= count else None
    return sound + int(quiet[0])


def _stop_closure(loud: npt.NDArray[np.bool_], at: int) -> bool:
    """Whether quiet frame ``at`` lies in a run of quiet shorter than STOP_FRAMES with
    sound on both sides: the closure of a stop consonant, not a pause after a word."""
    lo, hi = max(0, at - STOP_FRAMES), min(len(loud), at + STOP_FRAMES)
    before = np.flatnonzero(loud[lo:at])
    after = np.flatnonzero(loud[at:hi])
    if len(before) == 0 or len(after) == 0:
        return False
    return int(after[0]) + at - (lo + int(before[-1])) - 1 < STOP_FRAMES


def _last_pause(loud: npt.NDArray[np.bool_], lo: int, hi: int) -> tuple[int, int] | None:
    """The last run of quiet frames in [lo, hi) at least PAUSE_FRAMES long, as (first
    quiet, first loud after it); None if there is none."""
    if hi - lo < PAUSE_FRAMES or lo < 0:
        return None
    quiet = ~loud[lo:hi]
    edges = np.flatnonzero(np.diff(np.concatenate(([False], quiet, [False])).astype(np.int8)))
    runs = edges.reshape(-1, 2)
    long = [(lo + int(a), lo + int(b)) for a, b in runs if b - a >= PAUSE_FRAMES]
    return long[-1] if long else None

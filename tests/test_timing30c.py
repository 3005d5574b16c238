"""Local timing (issue 30): cue starts in running speech not pushed later where no cue
ends early, and the heaps trimmed between alignment windows."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

import numpy as np

from dropscribe.timing import pace, whisper
from test_align_speech import spoken
from test_timing30 import RUNNING, aligned_cues
from test_timing30b_renditions import early_cues, rendition

if TYPE_CHECKING:
    import pytest

    from conftest import Setup

# Words said at the recording's own pace: 45 ms for each letter and one more.
PACED = [("the", 0.18), ("board", 0.27), ("can", 0.18), ("decide", 0.315), ("on", 0.135)]


def timeline(words: list[tuple[str, float]]) -> tuple[list[tuple[float, float]], list[str]]:
    """Words running straight on from 1 s, each for its given seconds."""
    times, at = [], 1.0
    for _, seconds in words:
        times.append((round(at, 3), round(at + seconds, 3)))
        at += seconds
    return times, [w for w, _ in words]


def test_the_second_rendition_at_140_words_a_minute_starts_its_cues_near_their_words(
    setup: Setup,
):
    """Running speech said second at 140 words a minute, answered as text only and timed
    by the dropscribe process: no cue ends more than 50 ms early, and the cues start
    within 100 ms of their first word at the median (a boundary moved later at a long
    word before a short one put a cue start at 'for' instead of 'plan': 117 ms)."""
    speech = rendition(RUNNING, 2, 140, "en")
    found = aligned_cues(setup, speech)
    assert early_cues(found, speech) == []
    errors, at = [], 0
    for start, _, said in found:
        errors.append(abs(start - speech.words[at][1]))
        at += len(said)
    assert statistics.median(errors) <= 0.1, [round(e, 3) for e in errors]


def test_a_long_word_before_a_short_one_at_the_recordings_pace_keeps_its_boundary():
    """Unit: 'detailed plan' said at the recording's own pace: the letters against 'plan'
    alone ask for a later boundary, the recording's pace does not; it stays."""
    times, words = timeline([*PACED, ("detailed", 0.35), ("plan", 0.35), *PACED])
    assert pace.evened(times, words, np.ones(600, dtype=bool)) == times


def test_a_word_squeezed_against_the_recordings_pace_still_moves_its_boundary_later():
    """Unit: 'forgotten' given 0.28 s (the pace asks 0.45 s) and 'when' 0.4 s (the pace
    asks 0.23 s): the boundary moves later, the outer edges stay."""
    times, words = timeline([*PACED, ("forgotten", 0.28), ("when", 0.4), *PACED])
    moved = pace.evened(times, words, np.ones(600, dtype=bool))
    n = words.index("forgotten")
    assert times[n][1] < moved[n][1] == moved[n + 1][0] < times[n + 1][1]
    assert moved[n][0] == times[n][0]
    assert moved[n + 1][1] == times[n + 1][1]
    assert [t for k, t in enumerate(moved) if k not in {n, n + 1}] == [
        t for k, t in enumerate(times) if k not in {n, n + 1}
    ]


def test_the_heaps_are_trimmed_before_every_window(monkeypatch: pytest.MonkeyPatch):
    """Unit (the bundled model): the C heaps' free pages go back to the system before
    each window is aligned (the buffers of the last one stayed with the process)."""
    calls: list[int] = []
    speech = spoken(RUNNING, gap=0.5)
    aligner = whisper.Windows("tiny.en", speech.pcm, "en")
    monkeypatch.setattr(whisper, "trimmed", lambda: calls.append(aligner.windows))
    said = RUNNING.split()
    aligner(0.0, 10.0, said[:30])
    aligner(10.0, 20.0, said[30:])
    assert calls == [0, 1]

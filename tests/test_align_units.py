"""The pure pieces of local timing: windows over an aligner, the snapper, the answer's words."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dropscribe.timing import snap, windows, words
from dropscribe.transcript import Transcript

if TYPE_CHECKING:
    from collections.abc import Sequence


def loud_of(runs: Sequence[tuple[float, float]], seconds: float) -> np.ndarray:
    """10 ms frames, loud inside each (start, end) run."""
    loud = np.zeros(round(seconds * 100), dtype=bool)
    for start, end in runs:
        loud[round(start * 100) : round(end * 100)] = True
    return loud


@settings(max_examples=150, deadline=None)
@given(
    count=st.integers(0, 120),
    seconds=st.floats(1.0, 200.0),
    runs=st.lists(st.tuples(st.floats(0, 200), st.floats(0.05, 20)), max_size=30),
    answers=st.lists(
        st.tuples(st.floats(-5, 300), st.floats(-5, 300)),
        max_size=200,
    ),
    short=st.integers(0, 50),
)
def test_every_word_is_timed_once_in_order_whatever_the_aligner_says(
    count, seconds, runs, answers, short
):
    """Whatever (start, end) pairs the aligner gives (any order, out of the window, too few),
    each word gets exactly one time, starts never go back, ends follow starts, all inside."""
    loud = loud_of([(a, a + b) for a, b in runs], seconds)
    said = [f"w{n}" for n in range(count)]
    calls = []

    def aligner(start: float, end: float, offered: Sequence[str]) -> list[tuple[float, float]]:
        calls.append((start, end, list(offered)))
        assert start <= end
        return answers[: max(0, len(offered) - short)]

    times = windows.timed(said, loud, aligner)
    assert len(times) == count
    total = len(loud) * 0.01
    assert all(0 <= a <= b <= total + 1e-9 for a, b in times)
    assert [a for a, _ in times] == sorted(a for a, _ in times)
    for _, _, offered in calls:  # each window is offered the next words, in order
        first = said.index(offered[0]) if offered else 0
        assert offered == said[first : first + len(offered)]


def test_a_perfect_aligner_gives_the_truth_across_windows():
    """With an aligner that knows each word's time, every word gets its own time, though
    the recording is two minutes long and only 30 s is aligned at a time."""
    truth = [(n * 0.5 + (n // 10) * 1.0, n * 0.5 + (n // 10) * 1.0 + 0.4) for n in range(200)]
    loud = loud_of(truth, truth[-1][1] + 1.0)
    said = [f"w{n}" for n in range(len(truth))]
    seen = []

    def aligner(start: float, end: float, offered: Sequence[str]) -> list[tuple[float, float]]:
        seen.append(end - start)
        out = []
        for word in offered:
            a, b = truth[int(word[1:])]
            if b > end:  # words past the window are squeezed into its end
                a, b = end, end
            out.append((a, b))
        return out

    assert windows.timed(said, loud, aligner) == [(round(a, 3), round(b, 3)) for a, b in truth]
    assert max(seen) <= windows.LONGEST
    assert len(seen) <= 6  # about 110 s in 30 s windows, each repeating its last words


def test_a_start_in_the_pause_moves_on_to_the_sound():
    """A word placed 150 ms early, in the quiet before it, starts where its sound does."""
    loud = loud_of([(1.0, 1.5), (2.0, 2.6)], 3.0)
    assert snap.snapped([(0.95, 1.5), (1.85, 2.7)], loud) == [(1.0, 1.5), (2.0, 2.6)]


def test_a_late_start_inside_the_sound_moves_back_to_its_onset():
    """A word after a pause placed 120 ms late starts at the onset of its sound; its end,
    placed inside the following quiet, comes back to where the sound stops."""
    loud = loud_of([(1.0, 1.5), (2.0, 2.6)], 3.0)
    assert snap.snapped([(1.0, 1.5), (2.12, 2.8)], loud) == [(1.0, 1.5), (2.0, 2.6)]


def test_connected_speech_keeps_its_times():
    """Words with no quiet between them, and edges far from any pause, are left alone."""
    loud = loud_of([(0.0, 5.0)], 6.0)
    times = [(1.0, 1.4), (1.4, 2.0), (2.0, 2.5), (2.5, 5.0)]
    assert snap.snapped(times, loud) == times


def test_a_word_before_a_pause_ends_where_its_sound_does():
    """The last word before a pause, timed 400 ms short, ends where its sound stops."""
    loud = loud_of([(0.0, 2.0), (3.0, 3.5)], 4.0)
    assert snap.snapped([(1.0, 1.6), (3.0, 3.5)], loud) == [(1.0, 2.0), (3.0, 3.5)]


def test_snapped_words_stay_in_order():
    """Snapping never makes a word end after the next one starts."""
    loud = loud_of([(1.0, 1.2), (1.25, 2.0)], 3.0)
    out = snap.snapped([(1.0, 1.3), (1.22, 2.0)], loud)
    assert out[0][1] <= out[1][0]
    assert out[0][0] <= out[1][0]


def test_loud_frames_find_speech_over_noise():
    """A tone over faint noise is loud; the noise around it is not."""
    rng = np.random.default_rng(1)
    pcm = rng.normal(0, 30, 16000 * 3)
    t = np.arange(16000) / 16000
    pcm[16000:32000] += 8000 * np.sin(2 * np.pi * 220 * t)
    loud = snap.loud_frames(pcm.astype(np.int16), 16000)
    assert loud[110:190].all()
    assert not loud[:90].any()
    assert not loud[210:].any()


def test_speakers_of_a_diarized_answer_survive_alignment():
    """Each word keeps the speaker of the segment it came in; segments keep their labels
    and text, re-timed to their words."""
    answer = Transcript(
        text="Hello there. Hi, how are you?",
        segments=(
            {"id": 0, "start": 0.0, "end": 9.0, "text": "Hello there.", "speaker": "A"},
            {"id": 1, "start": 9.0, "end": 20.0, "text": " Hi, how are you?", "speaker": "B"},
        ),
    )
    said = words.answered(answer)
    assert said == [
        ("Hello", "A"),
        ("there.", "A"),
        ("Hi,", "B"),
        ("how", "B"),
        ("are", "B"),
        ("you?", "B"),
    ]
    times = [(0.5, 0.8), (0.8, 1.2), (2.0, 2.3), (2.3, 2.5), (2.5, 2.7), (2.7, 3.0)]
    out = words.with_times(answer, said, times, 20.0)
    assert [w.get("speaker") for w in out.words] == ["A", "A", "B", "B", "B", "B"]
    assert [(s["start"], s["end"], s["speaker"]) for s in out.segments] == [
        (0.5, 1.2, "A"),
        (2.0, 3.0, "B"),
    ]
    assert out.text == answer.text


def test_a_text_only_answer_gets_segments_at_its_pauses():
    """Without segments, the words are grouped at pauses and at sentence ends."""
    answer = Transcript(text="One two. Three four five six")
    said = words.answered(answer)
    times = [(0.0, 0.3), (0.3, 0.6), (1.0, 1.3), (1.3, 1.6), (2.6, 2.9), (2.9, 3.2)]
    out = words.with_times(answer, said, times, 4.0)
    assert [s["text"] for s in out.segments] == ["One two.", "Three four", "five six"]
    assert [w["word"].strip() for w in out.words] == answer.text.split()

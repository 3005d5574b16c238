"""Cues end with their last word on other renditions of running speech (issue 30): the
second rendition of a text in one libespeak-ng process (it keeps state between
utterances), other rates and voices; and the pieces that caused the early ends."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from dropscribe.outputs.render import Page
from dropscribe.timing import pace, snap, timed
from dropscribe.transcript import Transcript
from dropscribe.vocab.settings import Format
from test_align_speech import RATE, Spoken, _truth
from test_timing30 import RUNNING, aligned_cues

if TYPE_CHECKING:
    from conftest import Setup

EARLY = 0.05  # seconds a cue may end before its last word's sound does
# (voice, words a minute, which rendition in one process): each once ended a cue early
RENDITIONS = [
    ("en-us", 165, 2),
    ("en-us", 140, 2),
    ("en", 140, 2),
    ("en-us+f3", 140, 1),
    ("en-us+f3", 165, 3),
]


def rendition(text: str, nth: int, speed: int = 165, voice: str = "en-us") -> Spoken:
    """``text`` said ``nth`` times by libespeak-ng in one fresh process, the last of them
    kept (after half a second of silence), with its word events as truth."""
    child = (
        "import pickle, sys; sys.path.insert(0, sys.argv[1]); import test_align_speech as t;"
        " said = [t._synthesised(sys.argv[2], int(sys.argv[3]), sys.argv[4])"
        " for _ in range(int(sys.argv[5]))]; sys.stdout.buffer.write(pickle.dumps(said[-1]))"
    )
    here = str(Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, "-c", child, here, text, str(speed), voice, str(nth)],
        capture_output=True,
        check=True,
        timeout=120,
    )
    chunks, starts, rate = pickle.loads(done.stdout)
    audio = np.concatenate(chunks).astype(np.float32)
    count = round(len(audio) * RATE / rate)
    pcm = np.interp(np.arange(count) * rate / RATE, np.arange(len(audio)), audio)
    samples = np.concatenate((np.zeros(RATE // 2), pcm)).clip(-32768, 32767).astype(np.int16)
    return Spoken(samples, _truth(text, starts, samples, 0.5))


def early_cues(cues: list[tuple[float, float, list[str]]], speech: Spoken) -> list[str]:
    """The cues ending more than EARLY before their last word's sound does, with by how
    much; a word whose truth espeak-ng lost (its event merged with the next word's, so
    the starts around it are out of order) is not judged."""
    truth, out, at = speech.words, [], 0
    for _, end, said in cues:
        last = at + len(said) - 1
        around = [s for _, s, _ in truth[max(0, last - 1) : last + 3]]
        if around == sorted(around) and end < truth[last][2] - EARLY:
            out.append(f"{' '.join(said[-3:])!r} ends {truth[last][2] - end:.3f} s early")
        at += len(said)
    return out


def test_the_second_rendition_of_running_speech_ends_every_cue_with_its_last_word(setup: Setup):
    """The running-speech text said second in a libespeak-ng process, answered as text
    only and timed here by the dropscribe process: no cue ends more than 50 ms before
    its last word's sound does (one ended 100 ms early: '... nothing is forgotten')."""
    speech = rendition(RUNNING, 2)
    found = aligned_cues(setup, speech)
    assert early_cues(found, speech) == []


@pytest.mark.parametrize(("voice", "speed", "nth"), RENDITIONS)
def test_renditions_rates_and_voices_end_every_cue_with_its_last_word(voice, speed, nth):
    """Unit (the alignment and the cues, in this process): on other renditions, rates and
    voices of the running speech, no cue ends more than 50 ms before its last word."""
    speech = rendition(RUNNING, nth, speed, voice)
    answer = timed.aligned(Transcript(text=RUNNING, language="en"), speech.pcm, "tiny.en")
    page = Page(answer)
    page.render(Format.SRT)
    found = [(c.start, c.end, c.text.split()) for c in page.subtitles]
    assert [w for _, _, said in found for w in said] == RUNNING.split()
    assert early_cues(found, speech) == []


def test_a_start_after_a_stops_closure_does_not_take_the_last_words_end():
    """Unit: a word timed inside sound that follows a stop's closure (60 ms of quiet in
    speech, "pre|pare a") keeps its start, and the word before keeps its end."""
    loud = np.zeros(120, dtype=bool)
    loud[15:95] = True  # "prepare a", said without a pause
    loud[40:44] = False  # the closure of the second p of "prepare"
    times = [(0.2, 0.7), (0.7, 0.9)]  # "prepare", "a": the boundary well after it
    assert snap.snapped(times, loud) == [(0.15, 0.7), (0.7, 0.95)]


def test_an_end_comes_back_only_to_audible_sound():
    """Unit: after a word, a faint release (audible, not loud) then silence: the end
    comes back to the end of the release, not to the end of the loud vowel."""
    loud = np.zeros(100, dtype=bool)
    loud[20:50] = True  # the vowel
    audible = loud.copy()
    audible[53:58] = True  # the release of a final stop, 20 dB down
    assert snap.snapped([(0.2, 0.8)], loud) == [(0.2, 0.5)]
    assert snap.snapped([(0.2, 0.8)], loud, audible) == [(0.2, 0.58)]


def test_a_too_early_boundary_in_running_speech_moves_later_and_never_earlier():
    """Unit: two words running on, the first given 0.28 s for nine letters and the second
    0.4 s for four: the boundary moves later; a boundary already fair, or across a
    pause, stays."""
    loud = np.ones(300, dtype=bool)
    moved = pace.evened([(1.0, 1.28), (1.28, 1.68)], ["forgotten", "when"], loud)
    assert 1.28 < moved[0][1] == moved[1][0] < 1.68
    assert moved[0][0] == 1.0
    assert moved[1][1] == 1.68
    fair = [(1.0, 1.45), (1.45, 1.68)]
    assert pace.evened(fair, ["forgotten", "when"], loud) == fair
    loud[130:150] = False  # 200 ms of quiet between them
    early = [(1.0, 1.28), (1.28, 1.68)]
    assert pace.evened(early, ["forgotten", "when"], loud) == early

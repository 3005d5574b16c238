"""Cues that start where their first word starts, mid-speech too (brief cues15): where the
words run on without ``min_gap`` of quiet, the gap between two cues is shared (the cue
ends up to ``RUNNING_EARLY`` before its last word, the next starts the rest later),
instead of the next cue starting the whole gap late. Real espeak-ng speech through the
``dropscribe`` process, for engine word times and for a text-only answer timed here;
and the cutter's rule alone."""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

import pytest

from conftest import API_KEY, DaemonProcess
from dropscribe.outputs import cues
from dropscribe.vocab.settings import SubtitleRules
from fakeapi import FakeAPI
from test_align import configured, run_once, srt_cues, text_only
from test_align_speech import spoken
from test_timing30 import RUNNING
from test_timing30b_renditions import early_cues

if TYPE_CHECKING:
    from conftest import Setup
    from fakeapi import Upload

GAP = SubtitleRules().min_gap
SHARE = 0.04  # the most a cue starts after its first word in running speech (a frame at 25 fps)
MS = 0.0015  # srt's whole milliseconds, and rounding
FULL = 0.8  # a word given less of what its letters ask for keeps its end (and the gap)
TRULY = 0.06  # against the true word starts, snapping's few ms included


def mid_speech_starts(
    found: list[tuple[float, float, list[str]]], words: list[tuple[float, float]]
) -> list[tuple[str, float]]:
    """For each cue whose first word follows the word before with less than min_gap of
    quiet (by ``words``' times), and that word was given the time its letters ask for
    (FULL of the words' median seconds a letter, a letter more a word): its first word
    and how late the cue starts after it."""
    said = [w for _, _, cue in found for w in cue]
    asks = [(b - a) / (letters(w) + 1) for (a, b), w in zip(words, said, strict=True)]
    pace = sorted(asks)[len(asks) // 2]
    out, at = [], 0
    for start, _, cue in found:
        last = at - 1
        if at and words[at][0] - words[last][1] < GAP - 1e-9 and asks[last] >= FULL * pace:
            out.append((cue[0], round(start - words[at][0], 3)))
        at += len(cue)
    return out


def letters(word: str) -> int:
    return max(1, sum(c.isalnum() for c in word))


def test_engine_word_times_in_running_speech_start_each_cue_with_its_first_word(setup: Setup):
    """Running speech answered with its true word times (verbose_json): every cue cut
    inside a sentence (after a word given its time) starts within RUNNING_EARLY of its first word as snapped (it
    started min_gap, 80 ms, late) and within 60 ms of its true start, none ends more
    than 50 ms before its last word's sound, min_gap apart."""
    speech = spoken(RUNNING, gap=0.5)
    words = [{"word": f" {w}", "start": a, "end": b} for w, a, b in speech.words]

    def answer(_upload: Upload) -> dict[str, Any]:
        return {
            "task": "transcribe",
            "language": "english",
            "duration": speech.seconds,
            "text": RUNNING,
            "segments": [
                {"id": 0, "start": words[0]["start"], "end": words[-1]["end"], "text": RUNNING}
            ],
            "words": words,
        }

    setup.api.answer = answer
    setup.data["defaults"]["formats"] = ["srt", "verbose_json"]
    speech.write(setup.inbox / "talk.wav")
    daemon = DaemonProcess(setup, command="once")
    assert daemon.wait() == 0
    assert daemon.named("timing.snapped")
    found = srt_cues((setup.inbox / "talk.srt").read_text())
    assert [w for _, _, said in found for w in said] == RUNNING.split()
    snapped = json.loads((setup.inbox / "talk.verbose.json").read_text())["words"]
    late = mid_speech_starts(found, [(w["start"], w["end"]) for w in snapped])
    assert len(late) >= 2, "the sentences are cut inside, where the words run on"
    assert all(-MS <= s <= SHARE + MS for _, s in late), late
    truly = mid_speech_starts(found, [(a, b) for _, a, b in speech.words])
    assert all(s <= TRULY for _, s in truly), truly
    assert early_cues(found, speech) == []
    for (_, end, _), (start, _, _) in itertools.pairwise(found):
        assert start - end >= GAP - MS, "the shortest gap between cues"


def test_a_text_only_answer_in_running_speech_starts_each_cue_with_its_timed_word(
    setup: Setup,
):
    """Running speech answered as text only and timed by the dropscribe process: every
    cue cut inside a sentence (after a word given its time) starts within RUNNING_EARLY of its first word's time in
    the verbose.json sidecar (it started min_gap late), none ends more than 50 ms before its last
    word's sound, min_gap apart."""
    speech = spoken(RUNNING, gap=0.5)
    speech.write(setup.inbox / "talk.wav")
    with FakeAPI(api_key=API_KEY, answer=text_only(RUNNING)) as api:
        configured(setup, api, model="gpt-transcribe", formats=["srt", "verbose_json"])
        daemon = run_once(setup)
    assert daemon.named("timing.aligned")
    found = srt_cues((setup.inbox / "talk.srt").read_text())
    assert [w for _, _, said in found for w in said] == RUNNING.split()
    timed = json.loads((setup.inbox / "talk.verbose.json").read_text())["words"]
    late = mid_speech_starts(found, [(w["start"], w["end"]) for w in timed])
    assert len(late) >= 2, "the sentences are cut inside, where the words run on"
    assert all(-MS <= s <= SHARE + MS for _, s in late), late
    assert early_cues(found, speech) == []
    for (_, end, _), (start, _, _) in itertools.pairwise(found):
        assert start - end >= GAP - MS, "the shortest gap between cues"


@pytest.mark.parametrize("quiet", [0.0, 0.02, 0.04, 0.06])
def test_the_gap_between_cues_in_running_speech_is_shared(quiet: float):
    """Unit: two cues whose words have ``quiet`` seconds between them: the second starts
    at most RUNNING_EARLY less the quiet after its word (not min_gap less the quiet),
    the first ends at most RUNNING_EARLY before its word, min_gap apart."""
    rules = SubtitleRules(line_length=10, lines=1)
    words = [cues.Token("alpha", 1.0, 1.5), cues.Token("bravo", 1.5 + quiet, 2.0 + quiet)]
    first, second = cues.build(words, rules)
    assert first.end >= 1.5 - SHARE - 1e-9
    assert second.start - first.end >= rules.min_gap - 1e-9
    assert 0 <= second.start - words[1].start <= max(0.0, SHARE - quiet) + 1e-9

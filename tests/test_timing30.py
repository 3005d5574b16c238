"""Local timing through the real ``dropscribe`` process, issue 30's last gaps: cues in
running speech end with their last word; a change of ``align`` re-times a finished file;
a stop does not wait for a long alignment. Real espeak-ng speech, a text-only model
(gpt-transcribe's rules) on the fake API."""

from __future__ import annotations

import itertools
import signal
from typing import TYPE_CHECKING

import numpy as np
import pytest

from conftest import API_KEY, DaemonProcess
from dropscribe.outputs import cues
from dropscribe.vocab.settings import SubtitleRules
from fakeapi import FakeAPI
from test_align import configured, meeting, run_once, srt_cues, text_only
from test_align_speech import Spoken, spoken

if TYPE_CHECKING:
    from conftest import Setup

# Long sentences with no comma: espeak-ng says each without a pause, so the cues cut
# inside them meet words that run straight on.
RUNNING = (
    "The director of the northern office asked the sales team to prepare a detailed plan"
    " for the new website before the end of the month so that the board can decide on it"
    " during the meeting on Thursday morning. Everyone who works on the search page should"
    " send a short list of the open issues to the designer before lunch on Friday so that"
    " nothing is forgotten when the work starts again next week."
)
GAP = SubtitleRules().min_gap


def aligned_cues(setup: Setup, speech: Spoken, **settings: object) -> list:
    """The srt cues of ``speech`` answered as text only and timed here."""
    truth = " ".join(w for w, _, _ in speech.words)
    speech.write(setup.inbox / "talk.wav")
    with FakeAPI(api_key=API_KEY, answer=text_only(truth)) as api:
        configured(setup, api, model="gpt-transcribe", formats=["srt"], **settings)
        daemon = run_once(setup)
    assert [u.reply for u in api.uploads] == ["200"]
    assert daemon.named("timing.aligned")
    found = srt_cues((setup.inbox / "talk.srt").read_text())
    assert [w for _, _, said in found for w in said] == truth.split()
    return found


def test_cues_cut_inside_running_speech_end_with_their_last_word(setup):
    """A text-only answer of two long sentences said without pauses: every cue ends no
    more than 50 ms before its last word's sound does, and the next starts min_gap later."""
    speech = spoken(RUNNING, gap=0.5)
    found = aligned_cues(setup, speech)
    assert len(found) >= 4, "the sentences are cut inside"
    at = 0
    for _, end, said in found:
        last = speech.words[at + len(said) - 1]
        assert end >= last[2] - 0.05, f"{' '.join(said)!r} ends {last[2] - end:.3f} s early"
        at += len(said)
    for (_, end, _), (start, _, _) in itertools.pairwise(found):
        assert start - end >= GAP - 0.0015, "the shortest gap between cues"


def test_changing_align_re_times_a_finished_file(setup):
    """A file timed here, then ``align: false`` with rerun_on_change: the file is done
    again, as short spans (before, it stood as 'already done')."""
    speech = meeting()
    truth = " ".join(w for w, _, _ in speech.words)
    speech.write(setup.inbox / "talk.wav")
    with FakeAPI(api_key=API_KEY, answer=text_only(truth)) as api:
        configured(setup, api, model="gpt-transcribe", formats=["srt"], rerun_on_change=True)
        first = run_once(setup)
        assert first.named("timing.aligned")
        assert len(api.uploads) == 1
        setup.data["defaults"]["align"] = False
        second = run_once(setup)
    assert second.named("audio.spans"), "re-timed as spans"
    assert len(api.uploads) > 1
    assert not second.named("timing.aligned")


def test_sigterm_during_an_alignment_exits_without_waiting_for_it(setup):
    """SIGTERM while a long answer is being timed here: the alignment stops at its next
    window, the process exits 0 long before shutdown_grace, no srt is written, and the
    file is timed at the next start."""
    part = meeting()
    speech = Spoken(
        np.concatenate([part.pcm] * 6),
        [w for _ in range(6) for w in part.words],  # the text: only its words count here
    )
    truth = " ".join(w for w, _, _ in speech.words)
    speech.write(setup.inbox / "long.wav")
    with FakeAPI(api_key=API_KEY, answer=text_only(truth)) as api:
        configured(setup, api, model="gpt-transcribe", formats=["srt"])
        setup.data["shutdown_grace"] = 3600  # a daemon that waited would finish the file
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("timing.model_loaded", timeout=120)
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(timeout=60) == 0
        finally:
            daemon.kill()
        assert daemon.named("job.abandoned")
        assert not daemon.named("timing.aligned")
        assert not (setup.inbox / "long.srt").exists()
        again = run_once(setup)
    assert again.named("timing.aligned")
    assert (setup.inbox / "long.srt").exists()


@pytest.mark.parametrize("pause", [0.0, 0.03, 0.2])
def test_a_cue_ends_with_its_last_word_however_short_the_pause(pause):
    """Unit: words that run on (or pause less than min_gap): the cue ends where its last
    word does and the next starts min_gap after; a longer pause holds the gap in it."""
    rules = SubtitleRules(line_length=10, lines=1)
    words = [cues.Token("alpha", 1.0, 1.4), cues.Token("bravo", 1.4 + pause, 2.0 + pause)]
    first, second = cues.build(words, rules)
    assert first.end >= 1.4
    assert second.start - first.end >= rules.min_gap - 1e-9
    assert second.start <= max(words[1].start, 1.4 + rules.min_gap) + 1e-9

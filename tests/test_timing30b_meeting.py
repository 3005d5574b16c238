"""A 20-minute meeting (bench/cues.py's, seeded) reads as paragraphs at its pauses with
no orphaned one-word cues (issue 30's "Done when"), on three seeds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from cues import figures, meeting


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_20_minute_meeting_reads_as_paragraphs_without_orphaned_words(seed):
    """Unit (srt, txt, tsv of the engine's 20-30 s segments): no paragraph runs across a
    pause of 1.5 s, no one-word cue that is not a sentence of its own, no short cue left
    before 2 s of silence, no cue ending before its last word, tsv rows cue-sized."""
    found = figures(meeting(20, seed))
    assert found["paragraphs_across_a_1.5s_pause"] == 0
    assert found["cues_of_1_word_not_a_whole_sentence"] == 0
    assert found["orphans_before_2s_silence"] == 0
    assert found["cues_ending_over_50ms_before_their_last_word"] == 0
    assert found["longest_tsv_row_s"] <= 10

"""The local engine's pieces fill Whisper's 30 s with speech (issue 37, item 2): the
silence between spans is left out, as BatchedInferencePipeline does, and every time
said in a piece's clip is placed back on the recording's timeline."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np

from dropscribe.transcribe.batched import Piece, packed, placed

S = 16000


def test_speech_is_packed_up_to_thirty_seconds_of_speech_the_silence_not_counted():
    """Spans go into a piece while their speech adds up to 30 s at most, whatever the
    silence between them; a span longer than 30 s is cut in equal parts first."""
    speech = [(0, 10 * S), (13 * S, 23 * S), (30 * S, 40 * S), (41 * S, 42 * S)]
    speech += [(50 * S, 90 * S)]
    assert packed(speech, 30 * S, 26 * S) == [
        [(0, 10 * S), (13 * S, 23 * S), (30 * S, 40 * S)],
        [(41 * S, 42 * S), (50 * S, 70 * S)],
        [(70 * S, 90 * S)],
    ]
    assert packed([], 30 * S) == []


@dataclasses.dataclass
class Said:
    """faster-whisper's Segment and Word, as far as ``placed`` reads them."""

    start: float
    end: float
    words: list[Said] | None = None


def test_times_in_a_piece_are_placed_back_where_they_were_said():
    """A clip of two spans (5 s at 100 s, 5 s at 112 s): a time in the second span lands
    12 s later than in the clip; at the joint an end belongs to the first span and a
    start to the second."""
    piece = Piece(
        samples=np.zeros(10 * S, dtype=np.float32),
        starts=[0.0, 5.0],
        places=[100.0, 112.0],
        pauses=[5.0],
    )
    words = [Said(0.5, 5.0), Said(5.0, 6.0)]
    segment = placed(piece, 0.0, Said(0.5, 6.0, words))
    assert (segment.start, segment.end) == (100.5, 113.0)
    assert [(w.start, w.end) for w in segment.words] == [(100.5, 105.0), (112.0, 113.0)]
    assert placed(piece, 5.0, Said(1.0, 2.0)) == Said(113.0, 114.0, None)


def test_a_piece_is_redecoded_for_lost_words_not_for_a_high_no_speech_figure_alone():
    """A segment of 80 good words with the batched pass's no-speech figure at 0.69 shows
    no sign; a piece whose text is under 4 characters a second of its speech (or empty)
    is sparse, one of ordinary speech (15 a second) is not."""
    from dropscribe.transcribe import redo

    good = SimpleNamespace(compression_ratio=2.2, avg_logprob=-0.2, no_speech_prob=0.69)
    assert redo.flagged(good) is None
    assert redo.sparse(["x" * 435], 29.0) is None
    assert redo.sparse(["Anna approved the budget."], 29.0) == ("sparse", 25 / 29)
    assert redo.sparse([], 29.0) == ("sparse", 0.0)

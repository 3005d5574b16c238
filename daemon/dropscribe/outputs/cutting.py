"""Pure: where the cues of a stretch of words end (no long pause, no turn inside it).

Every cut into cues that fit the rules is weighed, and the cheapest taken: each cue
costs ``CUE_COST``; a cue of one or two words said in under ``BRIEF`` seconds
``SHORT_COST`` more (unless the stretch is no longer); where a cue ends costs what
``cues._end_cost`` says (nothing after a sentence, ``MID_SENTENCE`` inside one); a cue
that holds a sentence end but begins or ends inside a sentence ``STRADDLE`` more.
Worked backwards, each word tries every cue that starts with it and fits: the words
times a cue's words. Where a cue would hold more than ``DENSE`` words (text without
spaces, a run of digit groups) each cue is instead the fullest that ends well, so the
work stays the words.

Only numbers come in (``Stretch``): what the words are is ``cues``' business.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from dropscribe.vocab.settings import SubtitleRules

CUE_COST = 3.0
MID_SENTENCE, AFTER_CLAUSE, AFTER_SEGMENT, INSIDE_GROUP = 10.0, 4.0, 6.0, 1000.0
PAUSE_BONUS = 4.0  # a second's pause (or more) takes this off where a cue ends
# A cue of one or two words said in under ``BRIEF`` seconds (a flash, not a slow
# "tone 900"): less than MID_SENTENCE, so a short sentence stands alone rather than
# another sentence being cut for it; with CUE_COST more than PAUSE_BONUS, so a short
# cue that fits into a neighbour is merged into it.
SHORT_COST = {1: 9.0, 2: 6.0}
BRIEF = 1.0
# A cue that holds a sentence end and runs on past it into half a sentence (or begins
# with the end of one): "later. If nobody objects," reads worse than two cues.
STRADDLE = 8.0
DENSE = 48  # words a cue may hold before cues are filled rather than weighed


class Stretch(NamedTuple):
    """The facts of each word of a stretch, in order."""

    sizes: list[int]  # characters
    glued: list[bool]  # written without a space before it
    joined: list[bool]  # kept with the word before it (a title and its name, ...)
    starts: list[float]
    finishes: list[float]
    ends: list[float]  # what a cue ending after this word costs (one fewer than words)
    stops: list[bool]  # the word ends a sentence
    indent: int  # the room a speaker's name takes on the first cue's first line


def cheapest(stretch: Stretch, rules: SubtitleRules) -> list[int]:
    """For each word from which a chosen cue starts, where that cue ends (an index)."""
    whole = len(stretch.sizes)
    best = [0.0] * (whole + 1)  # the cost of the words from i on
    after = [whole] * (whole + 1)
    stops = [0]  # sentence ends before each word
    for stop in stretch.stops:
        stops.append(stops[-1] + stop)
    for i in range(whole - 1, -1, -1):
        open_start = i > 0 and not stretch.stops[i - 1]
        finishes, starts = stretch.finishes, stretch.starts
        reach = _reach(stretch, rules, i)
        if reach - i > DENSE:
            return _filled(stretch, rules)
        lowest = math.inf
        for j in range(i + 1, reach + 1):
            cost = CUE_COST + best[j] + (stretch.ends[j - 1] if j < whole else 0.0)
            if j - i in SHORT_COST and whole > j - i and finishes[j - 1] - starts[i] < BRIEF:
                cost += SHORT_COST[j - i]
            if stops[j - 1] > stops[i]:  # a sentence ends inside the cue
                cost += STRADDLE * (open_start + (j < whole and not stretch.stops[j - 1]))
            if cost <= lowest:  # a tie goes to the longer cue
                lowest, after[i] = cost, j
        best[i] = lowest
    return after


def _filled(stretch: Stretch, rules: SubtitleRules) -> list[int]:
    """Cues each as full as fits, ended at the cheapest place in their last two thirds
    unless the rest fits whole."""
    whole = len(stretch.sizes)
    after = [whole] * (whole + 1)
    i = 0
    while i < whole:
        j = _reach(stretch, rules, i)
        if j < whole:
            j = min(range(j, i + (j - i) // 3, -1), key=lambda k: stretch.ends[k - 1])
        after[i] = i = j
    return after


def _reach(stretch: Stretch, rules: SubtitleRules, i: int) -> int:
    """The end of the longest cue from word i that fits: lines counted as
    ``cues._Lines`` counts them (written out: this runs for every word of every cue
    that could start anywhere)."""
    width, most = rules.line_length, rules.lines
    sizes, glued, joined, finishes = stretch.sizes, stretch.glued, stretch.joined, stretch.finishes
    indent = stretch.indent if i == 0 else 0
    first, longest = stretch.starts[i], rules.max_seconds
    done = length = 0  # lines before the last piece, and the open line's length
    size, stuck = sizes[i], False  # the last piece: its length, written glued
    j = i + 1
    while j < len(sizes) and finishes[j] - first <= longest:
        sep = 0 if glued[j] else 1
        if joined[j] and size + sep + sizes[j] <= width - indent:
            size += sep + sizes[j]  # the piece grows
        else:  # the piece is placed; the next begins
            room = width - (0 if done else indent)
            if length and length + (0 if stuck else 1) + size > room:
                done, length = done + 1, size
            else:
                length = length + (0 if stuck else 1) + size if length else size
            size, stuck = sizes[j], glued[j]
        room = width - (0 if done else indent)
        wraps = length and length + (0 if stuck else 1) + size > room
        if done + (2 if wraps else 1) > most:
            break
        j += 1
    return j

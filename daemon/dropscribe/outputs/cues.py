"""Pure: a transcript's timed words -> subtitle cues within a folder's ``subtitles:`` rules.

Words come from the engine where it gave them (the local engine, whisper-1 and Groq
with word granularity); otherwise each segment's text is divided into words timed in
proportion to their characters, and a transcript without segments is spread over its
duration the same way. A pause of ``PAUSE_BREAK`` and a change of speaker always end a
cue; between them, the words are cut into the cheapest run of cues that each fit every
rule (``cutting``): each cue costs something, a cue that ends mid-sentence more, after a
clause less, at a pause less again, and a cue of one or two words a lot, so a sentence
end near the limit ends the cue and no lone word is left before a pause. Lines are
balanced and break between words (text written without spaces, between characters),
so a number or a name is never cut (unless it is longer than a line: then it is parted
like other words, so no piece grows with the answer). Times: a cue starts with its first
word, ends with its last, is held longer where the characters per second (or
``LEAST_SECONDS``) ask for it and the silence after allows, never ends before its last
word does by more than ``RUNNING_EARLY``, and ends at least ``min_gap`` before the next
one begins. Where the words run on without that much silence (a cue cut inside a
sentence), the gap is shared: the cue ends up to ``RUNNING_EARLY`` before its last word
does and the next starts the rest later, so neither is off by more than a frame at
25 fps (the next cue started the whole gap late before: 80 ms on top of its word's time).
"""

from __future__ import annotations

import bisect
import math
import re
from typing import TYPE_CHECKING, NamedTuple

from dropscribe.outputs import cutting

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dropscribe.transcript import Transcript
    from dropscribe.vocab.settings import SubtitleRules

PAUSE_BREAK = 1.5  # seconds of silence a cue never spans
LEAST_SECONDS = 1.0  # a cue is shown at least this long where the silence after allows
SPEECH_CPS = 15.0  # characters a second, to time a text that came without any duration
# Where words run on, a cue ends up to this before its last word does (a word given the
# time its letters ask for at the words' pace), so that the next one starts this much
# sooner after its first word (the gap between them is min_gap): under a frame at
# 25 fps, and under the 50 ms at which an end is counted early.
RUNNING_EARLY = 0.04
FULL = 0.8  # share of what its letters ask for a word must be given to end that early
# Sentence and clause ends, Western and CJK (ideographic full stop, full-width marks).
STOPS = ".?!\u2026\u3002\uff1f\uff01"
SENTENCE_END = re.compile(f"[{STOPS}]['\"\u2019\u201d)\\]]*$")
CLAUSE_END = re.compile("[,;:\u2013\u2014\u3001\uff0c\uff1b\uff1a]$")
ABBREVIATIONS = {"mr.", "mrs.", "ms.", "dr.", "st.", "prof.", "e.g.", "i.e.", "vs.", "etc.", "no."}
ABBREVIATED = max(len(a) for a in ABBREVIATIONS)
DIGITS = re.compile(r"\d+$")


class Token(NamedTuple):
    """One word (or, in text without spaces, one character) with its time."""

    text: str
    start: float
    end: float
    glued: bool = False  # written without a space before it
    segment_end: bool = False  # the last word of an engine's segment: a good place to break
    speaker: str | None = None


class Cue(NamedTuple):
    start: float
    end: float
    lines: tuple[str, ...]
    speaker: str | None = None
    turn: bool = False  # the speaker changes here: srt, lrc and txt name them (``label``)

    @property
    def label(self) -> str:
        """What the cue's first line starts with: the speaker's name where it changes."""
        return f"{self.speaker}: " if self.turn and self.speaker else ""

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def tokens(transcript: Transcript) -> list[Token]:
    """The transcript's words, timed by the engine or in proportion to their characters."""
    out: list[Token] = []
    if transcript.words:
        spaced = any(w["word"][:1].isspace() for w in transcript.words)
        unspaced = not spaced and " " not in transcript.text.strip()
        starts = [seg["start"] for seg in transcript.segments]
        for w in transcript.words:
            text = " ".join(w["word"].split())  # one line, whatever the engine put in it
            if text:
                glued = (not w["word"][:1].isspace()) if spaced else unspaced
                who = w.get("speaker") or _speaker_at(transcript, starts, w["start"], w["end"])
                end = max(w["start"], w["end"])
                out.append(Token(text, w["start"], end, bool(out) and glued, speaker=who))
        return out
    if transcript.segments:
        for seg in transcript.segments:
            pieces = divided(seg["text"], seg["start"], seg["end"], first=not out)
            out.extend(p._replace(speaker=seg.get("speaker")) for p in pieces)
        return out
    text = transcript.text.strip()
    duration = transcript.duration or len(text) / SPEECH_CPS
    return divided(text, 0.0, duration, first=True)


def _speaker_at(
    transcript: Transcript, starts: list[float], start: float, end: float
) -> str | None:
    """The speaker of the segment a word lies in (by its middle)."""
    if not starts:
        return None
    middle = (start + end) / 2
    index = max(0, bisect.bisect_right(starts, middle) - 1)
    return transcript.segments[index].get("speaker")


# Scripts written without spaces between words: Thai and Lao, Myanmar, Khmer, CJK
# punctuation, kana, the ideographs (and their extensions), full-width forms.
SPACELESS = (
    (0x0E00, 0x0EFF),
    (0x1000, 0x109F),
    (0x1780, 0x17FF),
    (0x3000, 0x30FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFF00, 0xFFEF),
    (0x20000, 0x3134F),
)


def spaceless(char: str) -> bool:
    """Whether ``char`` is of a script written without spaces between words."""
    code = ord(char)
    return any(low <= code <= high for low, high in SPACELESS)


def divided(text: str, start: float, end: float, *, first: bool = False) -> list[Token]:
    """``text`` as words spread over [start, end] in proportion to their characters;
    text without spaces (Chinese, Japanese, Thai) as characters. One word of another
    script (a segment that is only "Спасибо." or "café.wav") stays a word, a space
    before it: glued, txt read "transcript ofcafé.wav" (paras19's segments showed it)."""
    words = text.split()
    glue = len(words) == 1 and len(words[0]) > 1 and any(map(spaceless, words[0]))
    pieces = list(words[0]) if glue else words
    if not pieces:
        return []
    total = sum(len(p) for p in pieces)
    span = max(0.0, end - start)
    out = []
    at = 0
    for n, piece in enumerate(pieces):
        begin = start + span * at / total
        at += len(piece)
        finish = start + span * at / total
        glued = glue and (n > 0 or not first)
        out.append(Token(piece, round(begin, 3), round(finish, 3), glued, n == len(pieces) - 1))
    return out


def build(words: Sequence[Token], rules: SubtitleRules) -> list[Cue]:
    """Cues for ``words``, each within every rule (see the module's docstring)."""
    return timed(runs(words, rules), rules)


def runs(words: Sequence[Token], rules: SubtitleRules) -> list[tuple[Sequence[Token], int]]:
    """The words of each cue, and the room its speaker's name takes on its first line."""
    out: list[tuple[Sequence[Token], int]] = []
    first = 0
    for n in range(1, len(words) + 1):
        if n == len(words) or _must_break(words[n - 1], words[n]):
            out += _cut(words, first, n, rules)
            first = n
    return out


def _cut(
    words: Sequence[Token], a: int, b: int, rules: SubtitleRules
) -> list[tuple[Sequence[Token], int]]:
    """The cues of words[a:b], a stretch without a long pause or a turn, where
    ``cutting.cheapest`` ends them."""
    stretch = cutting.Stretch(
        sizes=[len(w.text) for w in words[a:b]],
        glued=[w.glued for w in words[a:b]],
        joined=[False] + [_together(words[k - 1], words[k]) for k in range(a + 1, b)],
        starts=[w.start for w in words[a:b]],
        finishes=[w.end for w in words[a:b]],
        ends=[_end_cost(words[k], words[k + 1]) for k in range(a, b - 1)],
        stops=[
            bool(SENTENCE_END.search(words[k].text))
            and (k + 1 == len(words) or not _together(words[k], words[k + 1]))
            for k in range(a, b)
        ],
        indent=_indent(words, a),  # only a stretch's first cue can start with a name
    )
    after = cutting.cheapest(stretch, rules)
    out: list[tuple[Sequence[Token], int]] = []
    i = 0
    while i < b - a:
        out.append((words[a + i : a + after[i]], _indent(words, a + i)))
        i = after[i]
    return out


def _end_cost(last: Token, nxt: Token) -> float:
    """What a cue ending between ``last`` and ``nxt`` costs: nothing after a sentence,
    more after a clause or an engine's segment, most mid-sentence; less at a pause; a
    title and its name, or the groups of a number, only if nothing else fits."""
    if _together(last, nxt):
        cost = cutting.INSIDE_GROUP
    elif SENTENCE_END.search(last.text):
        cost = 0.0
    elif CLAUSE_END.search(last.text):
        cost = cutting.AFTER_CLAUSE
    elif last.segment_end:
        cost = cutting.AFTER_SEGMENT
    else:
        cost = cutting.MID_SENTENCE
    return cost - cutting.PAUSE_BONUS * min(max(0.0, nxt.start - last.end), 1.0)


def _indent(words: Sequence[Token], i: int) -> int:
    """The room the speaker's name takes on the first line of a cue starting at i."""
    who = words[i].speaker
    turn = who is not None and (i == 0 or words[i - 1].speaker != who)
    return len(who) + 2 if turn and who else 0


def _must_break(before: Token, after: Token) -> bool:
    return after.start - before.end >= PAUSE_BREAK or before.speaker != after.speaker


class _Lines:
    """How many lines ``wrap`` makes of a run as it grows a word at a time, each word
    in constant time: the pieces of ``_units`` laid out as ``_greedy`` does (balancing
    never adds a line). Filling a cue costs its words, not its words squared."""

    def __init__(self, width: int, indent: int, first: Token) -> None:
        self._width = width
        self._indent = indent
        self._before = (0, 0)  # (lines done, length of the open line) before the last piece
        self._piece = (len(first.text), first.glued)  # the last piece: length, glued
        self._after = self._placed(self._before, self._piece)

    def add(self, last: Token, token: Token) -> int:
        """Lines of the run with ``token`` (which follows ``last``) added."""
        sep = 0 if token.glued else 1
        size, glued = self._piece
        if _together(last, token) and size + sep + len(token.text) <= self._width - self._indent:
            self._piece = (size + sep + len(token.text), glued)  # the piece grows
        else:
            self._before, self._piece = self._after, (len(token.text), token.glued)
        self._after = self._placed(self._before, self._piece)
        done, open_line = self._after
        return done + (1 if open_line else 0)

    def _placed(self, state: tuple[int, int], piece: tuple[int, bool]) -> tuple[int, int]:
        done, length = state
        size, glued = piece
        joined = length + (0 if glued else 1) + size if length else size
        room = self._width - (0 if done else self._indent)
        if length and joined > room:
            return done + 1, size
        return done, joined


def _together(last: Token, nxt: Token) -> bool:
    """Whether two words must not be parted by a line or a cue break: the parts of one
    word, a title and its name ("Mr. Smith"), the groups of one number ("10 000")."""
    if nxt.glued:
        return last.text[-1:].isascii() and nxt.text[:1].isascii()
    if len(last.text) <= ABBREVIATED and last.text.lower() in ABBREVIATIONS:
        return True
    return len(nxt.text) == 3 and nxt.text.isdigit() and bool(DIGITS.match(last.text))


def wrap(run: Sequence[Token], width: int, indent: int = 0) -> list[str]:
    """Balanced lines of at most ``width`` characters (the first ``indent`` fewer, for
    the speaker's name), broken between words that may be parted; a word (or such a
    group) longer than the width gets a line of its own."""
    units = _units(run, width - indent)  # a group kept together fits any of its lines
    lines = _greedy(units, width, indent)
    if len(lines) < 2:
        return lines
    narrowest = max(len(text) for text, _ in units)
    balanced = lines
    for w in range(width - 1, narrowest - 1, -1):  # the narrowest width with as few lines
        trial = _greedy(units, w, indent)
        if len(trial) > len(lines):
            break
        balanced = trial
    return balanced


def _units(run: Sequence[Token], width: int) -> list[tuple[str, bool]]:
    """The run as pieces a line may break between: (text, written without a space).
    Words kept together make a piece only while it fits the ``width``: a thousand
    digit groups or word parts in a row are parted like other words, so no piece (and
    no cue) grows with the answer."""
    units: list[tuple[str, bool]] = []
    for n, token in enumerate(run):
        sep = "" if token.glued else " "
        if n and _together(run[n - 1], token):
            text, glued = units[-1]
            if len(text) + len(sep) + len(token.text) <= width:
                units[-1] = (text + sep + token.text, glued)
                continue
        units.append((token.text, token.glued))
    return units


def _greedy(units: Sequence[tuple[str, bool]], width: int, indent: int = 0) -> list[str]:
    lines: list[str] = []
    line = ""
    for text, glued in units:
        joined = line + ("" if glued else " ") + text if line else text
        room = width - (0 if lines else indent)
        if line and len(joined) > room:
            lines.append(line)
            line = text
        else:
            line = joined
    if line:
        lines.append(line)
    return lines


def timed(runs: Sequence[tuple[Sequence[Token], int]], rules: SubtitleRules) -> list[Cue]:
    """Display times: monotonic, within ``max_seconds``, never ending more than
    ``RUNNING_EARLY`` before the cue's last word does, ``min_gap`` apart (taken from the
    silence between the cues' words; where the words run on with less, from up to
    RUNNING_EARLY of the cue's last word and the rest from the next cue's start), held for
    ``max_cps`` and ``LEAST_SECONDS`` where the silence after allows it. Where the
    engine's times overlap (a word ends after the next cue's first begins), the gap is
    taken before the next cue. Worked out in whole milliseconds (what srt and vtt write)."""
    longest = math.floor(rules.max_seconds * 1000)
    gap = math.ceil(rules.min_gap * 1000)
    give = min(gap, round(RUNNING_EARLY * 1000))
    letter = _per_letter([w for run, _ in runs for w in run])
    out = []
    end = -gap  # the last cue's end
    for n, (run, indent) in enumerate(runs):
        start = max(round(run[0].start * 1000), end + gap)
        limit = start + longest
        spoken = min(max(start, round(run[-1].end * 1000)), limit)  # the last word ends
        if n + 1 < len(runs):  # the next cue's words begin: the gap before them if it fits
            following = round(runs[n + 1][0][0].start * 1000)
            if spoken <= following:  # in order: the last word is shown to (nearly) its end
                full = _full(run[-1], letter)  # a word cut short by its timing keeps its end
                shared = max(spoken - (give if full else 0), start)
                limit = min(limit, max(shared, following - gap))
            else:  # the engine's times overlap: the next cue's start wins
                limit = min(limit, following - gap if following - gap > start else following)
                spoken = min(spoken, limit)
        lines = tuple(wrap(run, rules.line_length, indent))
        characters = sum(len(line) for line in lines) + indent
        wanted = max(
            spoken,
            start + math.ceil(characters * 1000 / rules.max_cps),
            start + round(LEAST_SECONDS * 1000),
        )
        end = max(start, min(wanted, limit))
        out.append(Cue(start / 1000, end / 1000, lines, run[0].speaker, indent > 0))
    return out


def _per_letter(words: Sequence[Token]) -> float:
    """The words' pace: the median seconds a letter (a letter more for each word)."""
    spans = sorted((w.end - w.start) / (_letters(w.text) + 1) for w in words)
    return spans[len(spans) // 2] if spans else 0.0


def _full(word: Token, letter: float) -> bool:
    """Whether ``word`` was given (nearly: FULL) the time its letters ask for at the
    words' pace: one given less may have been cut short by its timing (an aligner's boundary inside
    "forgot|ten"), so its end is no place to take time from."""
    return word.end - word.start >= FULL * letter * (_letters(word.text) + 1)


def _letters(text: str) -> int:
    return max(1, sum(c.isalnum() for c in text))

"""Readable cues, paragraphs and tsv rows from word and segment times (issue 30, item 4),
whatever the engine's segment sizes: unit tests on a meeting shaped like the issue's, and
property tests on built transcripts."""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dropscribe.outputs import cues, cutting
from dropscribe.outputs.render import Page
from dropscribe.transcript import Transcript
from dropscribe.vocab.settings import Format, SubtitleRules
from test_cues import RULES as TEST_CUES_RULES
from test_cues import check, timed_words

if TYPE_CHECKING:
    from collections.abc import Sequence

LATER = "The first item is the website, which Maria will present later."
MONTH = "If nobody objects, the sales team takes over the website from the end of the month."
# (speaker, sentences, seconds of silence after the turn): the 20-minute meeting,
# its first minute: a 3.7 s pause after "month.", then 3.2 s, a turn, then 3.8 s.
SCRIPT = [
    (
        "A",
        [
            "Good morning everyone, and thanks for joining the call today.",
            "We have three things to cover before lunch.",
            LATER,
            MONTH,
        ],
        3.7,
    ),
    ("A", ["Second, the budget for next year is still open.", "Please send me your figures."], 3.2),
    ("A", ["Any questions so far?"], 0.6),
    ("B", ["Yes, one.", "Who writes the texts for the new pages, and when do they go live?"], 3.8),
    ("A", ["Maria does, in the second week of July.", "Let us move on."], 1.0),
]
SEGMENT_SECONDS = 25.0  # the local engine's pieces: 20-30 s, cut anywhere


def meeting(
    script: list[tuple[str, list[str], float]] = SCRIPT, *, timed_words: bool = True
) -> tuple[Transcript, list[dict[str, Any]]]:
    """A transcript as the local engine (with speakers, as WhisperX gives them) answers
    the script: word times, 25-s segments cut wherever they fall; and the words."""
    words: list[dict[str, Any]] = []
    at = 0.0
    for who, sentences, pause in script:
        for n, sentence in enumerate(sentences):
            for word in sentence.split():
                length = 0.08 + 0.055 * len(word)
                words.append(
                    {
                        "word": f" {word}",
                        "start": round(at, 3),
                        "end": round(at + length, 3),
                        "speaker": who,
                    }
                )
                at += length + 0.05
            at += pause if n == len(sentences) - 1 else 0.45
    segments = segmented(words)
    text = "".join(w["word"] for w in words).strip()
    transcript = Transcript(
        text=text,
        language="en",
        duration=round(at, 3),
        segments=tuple(segments),  # type: ignore[arg-type]
        words=tuple(words) if timed_words else (),  # type: ignore[arg-type]
    )
    return transcript, words


def segmented(words: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The words in segments of ``SEGMENT_SECONDS``, cut wherever they fall."""
    segments: list[dict[str, Any]] = []
    for word in words:
        if not segments or word["start"] >= SEGMENT_SECONDS * len(segments):
            seg = {"id": len(segments), "start": word["start"], "text": ""}
            segments.append(seg | ({"speaker": word["speaker"]} if "speaker" in word else {}))
        segments[-1]["end"] = word["end"]
        segments[-1]["text"] += word["word"]
    return segments


def said(cue: cues.Cue) -> list[str]:
    return " ".join(cue.lines).split()


def test_meeting_cues_end_at_sentenceends_and_leave_no_word_alone():
    """The issue's meeting: 'month.' ends a cue of several words (not a 0.3 s cue of its
    own), 'later.' ends a cue, and no cue of one or two words is under a second where
    two seconds of silence follow."""
    transcript, words = meeting()
    page = Page(transcript)
    built = page.subtitles
    ends = [said(c)[-1] for c in built]
    assert "later." in ends
    (month,) = [c for c in built if said(c)[-1] == "month."]
    assert len(said(month)) > 2
    assert month.end - month.start >= 1.0
    assert not any(c.text.startswith("later.") for c in built)
    spoken = iter(words)
    for n, cue in enumerate(built):
        mine = [next(spoken) for _ in said(cue)]
        following = built[n + 1].start if n + 1 < len(built) else None
        silence = following is None or following - mine[-1]["end"] >= 2.0
        if len(mine) <= 2 and silence:
            assert cue.end - cue.start >= 1.0, cue
        assert cue.end >= mine[-1]["end"] - SubtitleRules().min_gap - 1e-3, cue
    assert sum(len(said(c)) <= 2 for c in built) <= 1  # "Yes, one.": a sentence on its own


def test_meeting_paragraphs_break_at_pauses_and_turns_not_at_segments():
    """txt and md: a paragraph per stretch between pauses of 1.5 s or more and at each
    turn, not one 0-57 s paragraph across the engine's 25-s segments."""
    transcript, _ = meeting()
    txt = Page(transcript).render(Format.TXT).decode().rstrip("\n").split("\n\n")
    assert txt == [
        (
            "A: Good morning everyone, and thanks for joining the call today. We have three"
            f" things to cover before lunch. {LATER} {MONTH}"
        ),
        "Second, the budget for next year is still open. Please send me your figures.",
        "Any questions so far?",
        "B: Yes, one. Who writes the texts for the new pages, and when do they go live?",
        "A: Maria does, in the second week of July. Let us move on.",
    ]
    md = Page(transcript, source="meeting.wav").render(Format.MD).decode()
    assert len(md.rstrip("\n").split("\n\n")[2:]) == len(txt)  # after front matter and title
    assert "**B:** Yes, one." in md


def test_meeting_tsv_rows_are_cue_sized_not_segments():
    """tsv: rows of at most a cue's length and characters, each word once in order,
    instead of one row per 25-s segment."""
    transcript, words = meeting()
    rules = SubtitleRules()
    rows = [r.split("\t") for r in Page(transcript).render(Format.TSV).decode().splitlines()]
    assert rows[0] == ["start", "end", "speaker", "text"]
    assert len(rows) - 1 > 2 * len(transcript.segments)
    for start, end, _, text in rows[1:]:
        assert int(end) - int(start) <= rules.max_seconds * 1000
        assert len(text) <= (rules.line_length + 1) * rules.lines
    assert " ".join(r[3] for r in rows[1:]).split() == [w["word"].strip() for w in words]
    assert [r[3] for r in rows[1:]].count(MONTH) <= 1


def test_segments_only_do_the_best_with_segments():
    """Without word times (Voxtral 3, text-only answers timed by segment): tsv rows
    cue-sized, every word once, no cue of one or two words shown under a second."""
    transcript, words = meeting(timed_words=False)
    transcript = Transcript(
        text=transcript.text,
        duration=transcript.duration,
        segments=tuple(
            {k: v for k, v in s.items() if k != "speaker"}
            for s in transcript.segments  # type: ignore[misc]
        ),
    )
    page = Page(transcript)
    assert all(len(said(c)) > 2 or c.end - c.start >= 1.0 for c in page.subtitles)
    rows = page.render(Format.TSV).decode().splitlines()[1:]
    assert all(int(r.split("\t")[1]) - int(r.split("\t")[0]) <= 7000 for r in rows)
    assert " ".join(r.split("\t")[2] for r in rows).split() == [w["word"].strip() for w in words]


# Property tests: transcripts of words with sentence and clause ends, pauses short and
# long, speakers or none, segments of any size, with word times or without.
VOCABULARY = ["we", "the", "sales", "team", "website", "month.", "later.", "objects,", "OK?"]
VOCABULARY += ["Mr.", "Smith", "10", "000", "agreed.", "yes.", "budget", "for", "next", "year"]
RULES = st.builds(
    SubtitleRules,
    line_length=st.integers(16, 60),
    lines=st.integers(1, 2),  # a cue of at most 40 of these words: weighed, not filled
    max_seconds=st.floats(1, 10),
    max_cps=st.floats(5, 30),
    min_gap=st.floats(0, 0.5),
    paragraph_seconds=st.sampled_from([0.5, 1.5, 2.0, 3.0]),
)


@st.composite
def transcripts(draw: st.DrawFn) -> Transcript:
    texts = draw(st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=120))
    named = draw(st.booleans())
    who, at = "A", draw(st.floats(0, 3))
    words = []
    for text in texts:
        at += draw(st.sampled_from([0.0, 0.05, 0.3, 1.0, 1.6, 2.5, 4.0]))
        if named and draw(st.integers(0, 9)) == 0:
            who = "B" if who == "A" else "A"
        length = draw(st.sampled_from([0.0, 0.1, 0.3, 0.8, 1.5]))
        word = {"word": f" {text}", "start": round(at, 3), "end": round(at + length, 3)}
        words.append(word | ({"speaker": who} if named else {}))
        at += length
    cuts = sorted(
        draw(st.sets(st.integers(1, len(words) - 1), max_size=8)) if len(words) > 1 else []
    )
    segments = []
    for first, last in itertools.pairwise([0, *cuts, len(words)]):
        piece = words[first:last]
        seg = {"id": len(segments), "start": piece[0]["start"], "end": piece[-1]["end"]}
        seg["text"] = "".join(w["word"] for w in piece)
        if named:
            seg["speaker"] = piece[0]["speaker"]
        segments.append(seg)
    return Transcript(
        text=" ".join(texts),
        duration=round(at, 3),
        segments=tuple(segments),  # type: ignore[arg-type]
        words=tuple(words) if draw(st.booleans()) else (),  # type: ignore[arg-type]
    )


def _straddles(words: Sequence[cues.Token], i: int, j: int, a: int, b: int) -> bool:
    """Whether words[i:j] of the stretch words[a:b] hold a sentence end and begin or
    end inside a sentence."""
    stop = [
        bool(cues.SENTENCE_END.search(w.text))
        and (k + 1 == len(words) or not cues._together(w, words[k + 1]))
        for k, w in enumerate(words)
    ]
    inner = any(stop[i : j - 1])
    return inner and ((i > a and not stop[i - 1]) or (j < b and not stop[j - 1]))


def _fits(run: Sequence[cues.Token], indent: int, rules: SubtitleRules) -> bool:
    """Whether the words of ``run`` make one cue within the line rules."""
    lines = cues.wrap(run, rules.line_length, indent)
    return len(lines) <= rules.lines and run[-1].end - run[0].start <= rules.max_seconds


@settings(max_examples=250, deadline=None)
@given(transcript=transcripts(), rules=RULES)
def test_cues_keep_every_word_obey_the_rules_and_leave_no_short_cue_that_fits(transcript, rules):
    """Property: every word once in order, every line rule; a cue of one or two words said
    in under a second only where it fits into neither neighbour in its stretch, and held
    a second where two seconds of silence follow; no cue ends before its last word
    unless the next cue begins right after it."""
    page = Page(transcript, rules=rules)
    built, runs, words = page.subtitles, page.runs, page.words
    check(words, built, rules)
    firsts = list(itertools.accumulate((len(r) for r, _ in runs), initial=0))
    breaks = [k for k in range(1, len(words)) if cues._must_break(words[k - 1], words[k])]
    starts, ends = [0, *breaks], [*breaks, len(words)]
    stretch_of = [sum(b <= f for b in breaks) for f in firsts[:-1]]
    gap = math.ceil(rules.min_gap * 1000) / 1000  # times are whole milliseconds
    for n, ((run, _), cue) in enumerate(zip(runs, built, strict=True)):
        following = runs[n + 1][0] if n + 1 < len(runs) else None
        if len(run) <= 2 and run[-1].end - run[0].start < cutting.BRIEF:
            for m in (n - 1, n) if n + 1 < len(runs) else (n - 1,):
                if m < 0 or stretch_of[m] != stretch_of[m + 1]:
                    continue
                (a, a_indent), (b, _) = runs[m], runs[m + 1]
                merged = [*a, *b]
                first = firsts[m]
                assert not _fits(merged, a_indent, rules) or _straddles(
                    words, first, first + len(merged), starts[stretch_of[m]], ends[stretch_of[m]]
                ), (run, a, b)
        if len(run) <= 2 and (following is None or following[0].start - run[-1].end >= 2.0):
            assert cue.end - cue.start >= 1.0 - 1e-3, cue
        pinned = n + 1 < len(built) and cue.end >= built[n + 1].start - gap - 1e-3
        held = cue.end >= cue.start + rules.max_seconds - 1e-3
        assert cue.end >= run[-1].end - 1e-3 or pinned or held, cue


@settings(max_examples=250, deadline=None)
@given(transcript=transcripts(), rules=RULES)
def test_paragraphs_and_tsv_keep_every_word_and_break_at_pauses_and_turns(transcript, rules):
    """Property: txt paragraphs and tsv rows hold every word once, in order; a paragraph
    ends exactly where a pause of paragraph_seconds or a turn is (or, past 600
    characters, a sentence end); tsv rows are segments only where each is cue-sized."""
    page = Page(transcript, rules=rules)
    words = page.words
    texts = [w.text for w in words]
    turns = page.turns
    assert " ".join(text for _, text in turns).split() == texts
    bounds, at = set(), 0
    for _, text in turns[:-1]:
        at += len(text.split())
        bounds.add(at)
    for k in range(1, len(words)):
        pause = words[k].start - words[k - 1].end >= rules.paragraph_seconds
        turn = words[k].speaker != words[k - 1].speaker
        if pause or turn:
            assert k in bounds, (k, texts)
        elif k in bounds:
            assert cues.SENTENCE_END.search(words[k - 1].text), (k, texts)
    rows = [r.split("\t") for r in page.render(Format.TSV).decode().splitlines()[1:]]
    assert " ".join(r[-1] for r in rows).split() == texts
    segments = transcript.segments
    if len(rows) != len(segments) or [r[-1] for r in rows] != [s["text"].strip() for s in segments]:
        for row in rows:
            if len(row[-1].split()) > 1:
                assert int(row[1]) - int(row[0]) <= rules.max_seconds * 1000 + 1
                assert len(row[-1]) <= (rules.line_length + 1) * rules.lines


@settings(max_examples=300, deadline=None)
@given(words=timed_words(), rules=TEST_CUES_RULES, indent=st.integers(0, 12))
def test_the_longest_cue_cutting_tries_is_the_longest_that_wrap_fits(words, rules, indent):
    """Property: cutting's written-out line count ends a cue where wrap's lines and the
    longest cue say the words stop fitting, from any word."""
    stretch = cutting.Stretch(
        sizes=[len(w.text) for w in words],
        glued=[w.glued for w in words],
        joined=[False] + [cues._together(a, b) for a, b in itertools.pairwise(words)],
        starts=[w.start for w in words],
        finishes=[w.end for w in words],
        ends=[0.0] * (len(words) - 1),
        stops=[False] * len(words),
        indent=indent,
    )
    for i in range(min(len(words), 3)):
        room = indent if i == 0 else 0
        j = i + 1
        while (
            j < len(words)
            and words[j].end - words[i].start <= rules.max_seconds
            and len(cues.wrap(words[i : j + 1], rules.line_length, room)) <= rules.lines
        ):
            j += 1
        assert cutting._reach(stretch, rules, i) == j

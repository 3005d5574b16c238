"""The cue builder, the hallucination guard, paragraphs and the lrc/tsv/md formats (pure)."""

from __future__ import annotations

import itertools
import math
import re
from datetime import UTC, datetime

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dropscribe.outputs import cues, guard
from dropscribe.outputs.render import PARAGRAPH_CHARS, Page
from dropscribe.transcript import Transcript
from dropscribe.vocab.settings import Format, SubtitleRules

EPS = 1e-6
WORDS = st.one_of(
    st.sampled_from(
        ["the", "a", "meeting", "ended,", "early.", "Mr.", "Smith", "10", "000", "OK?"]
    ),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.,'-", min_size=1, max_size=60),
)
RULES = st.builds(
    SubtitleRules,
    line_length=st.integers(10, 80),
    lines=st.integers(1, 3),
    max_seconds=st.floats(1, 10),
    max_cps=st.floats(5, 30),
    min_gap=st.floats(0, 0.5),
)


@st.composite
def timed_words(draw: st.DrawFn, glued: bool = False) -> list[cues.Token]:
    """Words (or CJK characters) with monotonic times, pauses short and long, some zero-length."""
    texts = draw(
        st.lists(
            st.sampled_from("会议开始了我们讨论预算") if glued else WORDS, min_size=1, max_size=80
        )
    )
    out, at = [], draw(st.floats(0, 5))
    for n, text in enumerate(texts):
        at += draw(st.sampled_from([0.0, 0.01, 0.2, 1.0, 2.0]))
        length = draw(st.floats(0, 3))
        out.append(cues.Token(text, round(at, 3), round(at + length, 3), glued and n > 0))
        at += length
    return out


def check(words: list[cues.Token], built: list[cues.Cue], rules: SubtitleRules) -> None:
    """Every rule of the docstring of outputs/cues.py, on one result."""
    joiner = "" if any(w.glued for w in words) else " "
    assert (
        joiner.join(joiner.join(c.lines) for c in built).split()
        == joiner.join(w.text for w in words).split()
    ), "every word exactly once, in order, nothing invented"
    for cue in built:
        assert 1 <= len(cue.lines) <= rules.lines
        for line in (cue.label + cue.lines[0], *cue.lines[1:]) if cue.turn else cue.lines:
            unit = [cues.Token(w, 0, 0) for w in line.removeprefix(cue.label).split(" ")]
            assert len(line) <= rules.line_length or len(cues.wrap(unit, 1)) == 1, line
        assert 0 <= cue.start <= cue.end <= cue.start + rules.max_seconds + EPS
    gap = math.ceil(rules.min_gap * 1000) / 1000  # times are whole milliseconds
    for a, b in itertools.pairwise(built):
        assert a.end <= b.start + EPS, "monotonic, no overlap"
        if b.start - a.start > gap + EPS:
            assert b.start - a.end >= gap - EPS, "the shortest gap"
    for n, cue in enumerate(built):
        characters = sum(len(line) for line in cue.lines)
        limit = cue.start + rules.max_seconds
        if n + 1 < len(built):
            limit = min(limit, built[n + 1].start - gap)
        held = cue.end - cue.start
        assert characters <= rules.max_cps * held + 1e-3 or cue.end >= limit - 1.5e-3, (
            "slow enough to read, or held as long as the next cue allows"
        )


@settings(max_examples=300, deadline=None)
@given(words=timed_words(), rules=RULES)
def test_every_cue_obeys_every_rule(words, rules):
    """Property: line length, lines, longest cue, cps, gap, order, and each word exactly once."""
    check(words, cues.build(words, rules), rules)


@settings(max_examples=200, deadline=None)
@given(
    words=timed_words(),
    rules=RULES,
    who=st.lists(st.sampled_from(["A", "B", "Ana"]), min_size=80, max_size=80),
)
def test_speakers_never_share_a_cue_and_their_names_fit_the_line(words, rules, who):
    """Property: a cue holds one speaker; where the speaker changes, the name counts in the line."""
    words = [w._replace(speaker=who[n]) for n, w in enumerate(words)]
    built = cues.build(words, rules)
    check(words, built, rules)
    spoken = iter(words)
    for n, cue in enumerate(built):
        said = [next(spoken) for _ in " ".join(cue.lines).split()]
        assert {w.speaker for w in said} == {cue.speaker}
        assert cue.turn == (n == 0 or built[n - 1].speaker != cue.speaker)


@settings(max_examples=100, deadline=None)
@given(words=timed_words(glued=True), rules=RULES)
def test_text_without_spaces_breaks_between_characters(words, rules):
    """Property: CJK text obeys the same rules, broken between characters, none lost."""
    built = cues.build(words, rules)
    check(words, built, rules)
    for cue in built:
        assert all(len(line) <= rules.line_length for line in cue.lines)


@settings(max_examples=100, deadline=None)
@given(
    segments=st.lists(
        st.tuples(st.lists(WORDS, min_size=1, max_size=30), st.floats(0, 40)), max_size=8
    ),
    rules=RULES,
)
def test_segments_without_words_are_divided_by_characters(segments, rules):
    """Property: segment text timed in proportion to its characters, within the rules."""
    segs, at = [], 0.0
    for n, (texts, length) in enumerate(segments):
        segs.append({"id": n, "start": at, "end": at + length, "text": " " + " ".join(texts)})
        at += length + 0.5
    transcript = Transcript(text=" ".join(s["text"] for s in segs), segments=tuple(segs))
    words = cues.tokens(transcript)
    assert [w.text for w in words] == transcript.text.split()
    check(words, cues.build(words, rules), rules)


def test_breaks_prefer_sentence_ends_and_keep_numbers_and_titles_whole():
    """A cue ends after a sentence rather than mid-clause; '10 000' and 'Mr. Smith' stay together."""
    text = "We met at noon. Mr. Smith brought 10 000 leaflets for the fair on Sunday morning."
    words, at = [], 0.0
    for w in text.split():
        words.append(cues.Token(w, round(at, 3), round(at + 0.3, 3)))
        at += 0.35
    built = cues.build(words, SubtitleRules(line_length=20, lines=2))
    texts = [c.text for c in built]
    assert texts[0] == "We met at noon.", texts
    assert all(not t.endswith("Mr.") for t in texts)
    assert not any(re.search(r"\b10$", line) for c in built for line in c.lines), texts


def test_a_long_pause_always_ends_a_cue():
    """Words either side of a pause of PAUSE_BREAK are never in one cue."""
    words = [cues.Token("Hello", 0, 0.4), cues.Token("again", 0.4 + cues.PAUSE_BREAK, 2.5)]
    assert [c.text for c in cues.build(words, SubtitleRules())] == ["Hello", "again"]


def test_lines_are_balanced():
    """Two lines of a cue are about equally long, not one full line and a stub."""
    words = [
        cues.Token(w, n * 0.2, n * 0.2 + 0.1)
        for n, w in enumerate(
            [
                "a",
                "b",
                "c",
                "d",
                "e",
                "f",
                "g",
                "h",
                "i",
                "j",
                "k",
                "l",
                "m",
                "n",
                "o",
                "p",
                "q",
                "r",
                "s",
                "t",
                "u",
                "v",
                "w",
            ]
        )
    ]
    (cue,) = cues.build(words, SubtitleRules(line_length=42, max_seconds=7))
    assert [len(line) for line in cue.lines] == [23, 21]


SEGMENTS = (
    {
        "id": 0,
        "start": 0.0,
        "end": 4.0,
        "text": " We planned the summer party.",
        "avg_logprob": -0.2,
        "no_speech_prob": 0.01,
    },
    {
        "id": 1,
        "start": 4.2,
        "end": 8.0,
        "text": " It is in July, after lunch.",
        "avg_logprob": -0.3,
        "no_speech_prob": 0.02,
    },
    {
        "id": 2,
        "start": 12.0,
        "end": 15.0,
        "text": " Next we met again.",
        "avg_logprob": -0.2,
        "no_speech_prob": 0.1,
    },
    {
        "id": 3,
        "start": 20.0,
        "end": 24.0,
        "text": " Thank you.",
        "avg_logprob": -1.4,
        "no_speech_prob": 0.8,
    },
    {
        "id": 4,
        "start": 25.0,
        "end": 27.0,
        "text": " again.",
        "avg_logprob": -0.5,
        "no_speech_prob": 0.3,
    },
)
TRANSCRIPT = Transcript(
    text=" ".join(s["text"].strip() for s in SEGMENTS),
    language="en",
    duration=28.0,
    segments=SEGMENTS,
)


def test_guard_drops_unlikely_speech_and_a_repeat_at_the_end_but_json_keeps_them():
    """Silence decoded unsure and a trailing repeat leave txt/srt; json and verbose_json keep all."""
    trimmed, dropped = guard.trim(TRANSCRIPT)
    assert [d.text for d in dropped] == ["Thank you.", "again."]
    assert "no speech likely" in dropped[0].why
    assert "repeats" in dropped[1].why
    assert (
        trimmed.text
        == "We planned the summer party. It is in July, after lunch. Next we met again."
    )
    page = Page(TRANSCRIPT)
    assert b"Thank you" not in page.render(Format.SRT)
    assert b"Thank you" not in page.render(Format.TXT)
    assert b"Thank you" in page.render(Format.JSON)
    assert b"Thank you" in page.render(Format.VERBOSE_JSON)


def test_guard_drops_a_looping_segment_and_keeps_a_clean_transcript_as_it_is():
    """A compression ratio over 2.4 is a loop; a transcript with nothing to drop is the same object."""
    loop = {
        "id": 0,
        "start": 0.0,
        "end": 30.0,
        "text": " la la la la la la",
        "compression_ratio": 3.1,
    }
    assert guard.trim(Transcript(text="la la", segments=(loop,)))[1][0].why.startswith("repetitive")
    clean = Transcript(text="Hi.", segments=(SEGMENTS[0],))
    assert guard.trim(clean) == (clean, [])


def test_txt_is_paragraphs_at_pauses_and_by_length():
    """A long pause starts a paragraph; one without pauses is cut at a sentence end after PARAGRAPH_CHARS."""
    txt = Page(TRANSCRIPT).render(Format.TXT).decode()
    assert txt == "We planned the summer party. It is in July, after lunch.\n\nNext we met again.\n"
    sentence = "The budget for next year was reviewed in detail by the team."
    text = " ".join([sentence] * 40)
    paragraphs = Page(Transcript(text=text)).render(Format.TXT).decode().rstrip("\n").split("\n\n")
    assert len(paragraphs) > 1
    assert all(
        PARAGRAPH_CHARS <= len(p) < PARAGRAPH_CHARS + len(sentence) + 1 for p in paragraphs[:-1]
    )
    assert " ".join(paragraphs) == text


def test_lrc_tsv_and_md_render_from_the_one_transcript():
    """lrc stamps each cue (and the silence after), tsv has ms rows, md has front matter and paragraphs."""
    page = Page(
        TRANSCRIPT,
        source="team:meeting.wav",
        model="tiny.en",
        recorded=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
    )
    lrc = page.render(Format.LRC).decode().splitlines()
    assert lrc[0] == "[00:00.00]We planned the summer party."
    assert "[00:15.00]" in lrc
    assert all(re.fullmatch(r"\[\d\d:\d\d\.\d\d\].*", line) for line in lrc)
    tsv = page.render(Format.TSV).decode().splitlines()
    assert tsv[0] == "start\tend\ttext"
    assert tsv[1:] == [
        "0\t4000\tWe planned the summer party.",
        "4200\t8000\tIt is in July, after lunch.",
        "12000\t15000\tNext we met again.",
    ]
    md = page.render(Format.MD).decode()
    front, body = md.split("---\n")[1], md.split("---\n", 2)[2]
    assert yaml.safe_load(front) == {
        "source": "team:meeting.wav",
        "date": "2026-12-01T09:30:00+00:00",
        "duration": "00:00:28",
        "language": "en",
        "model": "tiny.en",
    }
    assert (
        body
        == "\n# team:meeting\n\nWe planned the summer party. It is in July, after lunch.\n\nNext we met again.\n"
    )


def test_md_escapes_what_markdown_would_read_as_markup():
    """A paragraph that starts with '#' or '1.' stays text, not a heading or a list."""
    md = Page(Transcript(text="# not a heading"), source="x.wav").render(Format.MD).decode()
    assert "\n\\# not a heading\n" in md

"""Pure pieces of the answer path at hostile sizes: each is linear (or capped), each
gives what it gave before on ordinary input, and what it writes keeps its format."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import API_KEY
from dropscribe import speakers
from dropscribe.outputs import cues, guard, render
from dropscribe.transcribe import bodies
from dropscribe.transcript import Transcript
from dropscribe.vocab.settings import Format, SubtitleRules
from test_cues import RULES, timed_words

if TYPE_CHECKING:
    from collections.abc import Callable

# Each call below takes well under a second; before its fix, minutes to hours.
BOUND = 10.0


def quick(work: Callable[[], Any]) -> Any:
    started = time.monotonic()
    out = work()
    assert time.monotonic() - started < BOUND
    return out


def scrub(text: str) -> str:
    return text.replace(API_KEY, "***")


def test_a_megabyte_of_brackets_is_read_in_linear_time():
    """1 MB of '<', of '<title>' and of unclosed tags in a title: each error body is
    summed up quickly, as one line of at most MAX_MESSAGE characters."""
    for body in ("<" * 1_000_000, "<title>" * 150_000, "<title>" + "<a " * 300_000):
        message, _, _ = quick(lambda body=body: bodies.error_message(body.encode(), scrub))
        assert 0 < len(message) <= bodies.MAX_MESSAGE
        assert "\n" not in message


def test_an_html_error_page_is_still_summed_up_by_its_title():
    """A gateway's HTML page gives its title; a page without one its words, tags gone."""
    page = b"<html><head><TITLE>502 Bad Gateway</TITLE></head><body><h1>x</h1></body></html>"
    assert bodies.error_message(page, scrub)[0] == "502 Bad Gateway"
    assert bodies.error_message(b"<p>Service <b>down</b></p>", scrub)[0] == "Service down"


def test_a_key_across_the_cut_is_scrubbed_before_it():
    """A key that starts just before the part of the body looked at is blanked first:
    no prefix of it survives the cut."""
    body = "<i>" * ((bodies.SCANNED - 8) // 3) + " " + API_KEY
    message, _, _ = bodies.error_message(body.encode(), scrub)
    assert API_KEY[:6] not in message
    assert message == "***"


def test_an_unknown_charset_is_read_as_utf8():
    """A Content-Type naming no text encoding (or a made-up one) is read as UTF-8."""
    assert bodies.decoded(b"caf\xc3\xa9", "base64") == "café"
    assert bodies.decoded(b"caf\xc3\xa9", "no-such-charset") == "café"
    assert bodies.decoded(b"caf\xe9", "latin-1") == "café"


def test_letters_for_twenty_thousand_speakers_take_linear_time():
    """20,000 generic labels get distinct letters in order, quickly (8,000 took 112 s)."""
    segments = tuple(
        {"id": n, "start": float(n), "end": n + 1.0, "text": "w", "speaker": f"speaker_{n}"}
        for n in range(20_000)
    )
    done = quick(lambda: speakers.normalised(Transcript("w", segments=segments)))
    labels = [s["speaker"] for s in done.segments]
    assert labels[:3] == ["A", "B", "C"]
    assert labels[-1] == speakers.letter(19_999)
    assert len(set(labels)) == 20_000


@given(st.sets(st.sampled_from([speakers.letter(n) for n in range(40)] + ["Ana"])))
def test_letters_hand_out_what_free_letter_did(taken):
    """Letters gives, one after another, the first letter not taken, as free_letter did."""
    letters, used = speakers.Letters(taken), set(taken)
    for _ in range(30):
        expected = next(speakers.letter(n) for n in range(100) if speakers.letter(n) not in used)
        assert letters.next() == expected
        used.add(expected)


def test_guard_trims_forty_thousand_dropped_segments_and_words_in_linear_time():
    """40,000 dropped segments x 40,000 words (each word was looked for in each)."""
    unsure = {"text": "w", "no_speech_prob": 0.9, "avg_logprob": -2.0}
    segments = tuple(
        {"id": n, "start": n * 0.05, "end": n * 0.05 + 0.05, **unsure} for n in range(40_000)
    )
    words = tuple({"word": " w", "start": n * 0.05, "end": n * 0.05} for n in range(40_000))
    shown, dropped = quick(
        lambda: guard.trim(Transcript("w", duration=2000.0, segments=segments, words=words))
    )
    assert len(dropped) == 40_000
    assert shown.words == ()


INTERVALS = st.lists(st.tuples(st.floats(0, 50), st.floats(0, 5)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(gone=INTERVALS, times=st.lists(st.floats(0, 60), max_size=30))
def test_guard_finds_the_words_inside_dropped_segments_as_before(gone, times):
    """Property: the merged, bisected intervals hold exactly the times any of them held."""
    spans = [(a, a + length) for a, length in gone]
    merged = guard._merged(spans)
    starts = [a for a, _ in merged]
    for t in times:
        assert guard._inside(t, merged, starts) == any(a <= t <= b for a, b in spans)


@settings(max_examples=300, deadline=None)
@given(words=timed_words(), rules=RULES, indent=st.integers(0, 12))
def test_lines_counted_a_word_at_a_time_are_the_lines_wrap_makes(words, rules, indent):
    """Property: _Lines, grown a word at a time, counts what wrap makes of each prefix."""
    lines = cues._Lines(rules.line_length, indent, words[0])
    for n in range(1, len(words)):
        count = lines.add(words[n - 1], words[n])
        assert count == len(cues.wrap(words[: n + 1], rules.line_length, indent))


def test_twenty_thousand_words_kept_together_make_cues_in_linear_time():
    """Word parts, digit groups and titles, 20,000 at one instant: cues within the line
    length, quickly (each cue used to wrap its whole run again for every word)."""
    rules = SubtitleRules()
    for text, glued in (("w", True), ("000", False), ("Mr.", False)):
        words = [cues.Token(text, 0.0, 0.0, glued and n > 0) for n in range(20_000)]
        built = quick(lambda words=words: cues.build(words, rules))
        assert all(len(line) <= rules.line_length for cue in built for line in cue.lines)
        assert sum(len(c.text.replace(" ", "")) for c in built) == 20_000 * len(text)


def test_a_paragraph_that_never_ends_is_joined_in_linear_time():
    """A million pieces without a sentence end make one paragraph, joined once."""
    (paragraph,) = quick(lambda: render._by_length(["w"] * 1_000_000, " "))
    assert len(paragraph) == 2_000_000 - 1


def test_an_arrow_of_any_length_never_survives_in_srt():
    """'-->', '--->' and longer runs all become '->': no arrow in a cue's text."""
    for arrow in ("-->", "--->", "---->", "- -->", "-->>"):
        text = render._srt_text("", (f"a {arrow} b",))
        assert "-->" not in text
    assert render._srt_text("A: ", ("x --> y",)) == "A: x -> y"
    quick(lambda: render._srt_text("", ("-" * 1_000_000,)))


def test_markdown_escapes_leave_ordinary_text_as_it_was():
    """Plain speech is written as said; markup characters and block starts are escaped."""
    assert render._markdown_safe("We met at 9, said hello.") == "We met at 9, said hello."
    assert render._markdown_safe("# a *b* [c](d) <e> `f` _g_") == (
        r"\# a \*b\* \[c\](d) \<e> \`f\` \_g\_"
    )
    assert render._markdown_safe("1. one\n\n2. two") == r"1\. one 2. two"


def test_each_format_keeps_a_hostile_label_on_its_line():
    """A label with a blank line and a tab stays one field, on one line, in every format."""
    page = render.Page(
        Transcript.from_json(
            {
                "text": "hi",
                "segments": [{"start": 0, "end": 1, "text": "hi", "speaker": "A\n\nB\tC"}],
            }
        )
    )
    for fmt in (Format.TXT, Format.SRT, Format.VTT, Format.LRC, Format.TSV, Format.MD):
        text = page.render(fmt).decode()
        assert "A B C" in text, fmt
        assert not re.search(r"A\s*\n", text), fmt


def test_chunks_with_thousands_of_segments_in_their_overlap_are_matched_quickly():
    """Two chunks with 30,000 labelled segments each where they overlap (every pair was
    compared): their labels are matched quickly, the shared voice keeping its letter."""
    from dropscribe.audio.split import Span
    from dropscribe.jobs import voiceprints

    def chunk(offset: float, label: str) -> Transcript:
        segments = tuple(
            {"id": n, "start": offset + n * 0.0005, "end": offset + n * 0.0005 + 1.0}
            | {"text": "w", "speaker": label}
            for n in range(30_000)
        )
        return Transcript("w", segments=segments)

    first, second = Span(0.0, 100.0, 0.0), Span(80.0, 180.0, 100.0)
    parts = [(first, chunk(85.0, "A")), (second, chunk(5.0, "speaker_7"))]
    out = quick(lambda: voiceprints.matched(parts))
    assert {s["speaker"] for s in out[1].segments} == {"A"}


def test_a_ten_megabyte_word_is_divided_into_cues_in_linear_time():
    """Text without times holding one 10 MB token (the rest was copied for each piece):
    divided quickly into pieces of CUE_CHARS, nothing lost."""
    from dropscribe.audio import stitch

    pieces = quick(lambda: stitch.divide("x" * 10_000_000 + " y", 0.0, 60.0))
    assert all(len(p["text"]) <= stitch.CUE_CHARS for p in pieces)
    assert "".join(p["text"] for p in pieces).replace(" ", "") == "x" * 10_000_000 + "y"


def test_thousands_of_chunks_are_stitched_in_linear_time():
    """5,000 chunks cut outside pauses, a kilobyte of text each: each junction looks at
    the words before it, not at all the text so far (joined and split again per chunk)."""
    from dropscribe.audio import stitch
    from dropscribe.audio.split import Span

    parts = [
        (Span(n * 10.0, n * 10.0 + 12.0, n * 10.0 + 2.0 if n else 0.0, pause=False), text)
        for n, text in enumerate(Transcript(f"c{n} " + "word " * 200) for n in range(5_000))
    ]
    whole = quick(lambda: stitch.stitch(parts, 50_000.0))
    assert whole.text.split()[:2] == ["c0", "word"]
    assert len(whole.text.split()) == 5_000 * 201

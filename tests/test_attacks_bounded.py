"""The real ``dropscribe once`` process fed hostile answers (issue 36, items 8 and 10):
each shape that used to pin a worker for minutes ends its job within a wall-clock bound,
with a clear outcome; and no text or speaker label can forge the structure of a sidecar."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, make_wav, patience
from fakeapi import Reply

if TYPE_CHECKING:
    from conftest import Setup

pytestmark = pytest.mark.slow

# A loaded 2-core machine starts the process, uploads and renders in a few seconds;
# each shape below took minutes (or hours) before its fix. The bound is the suite's
# patience with it (90 s by default: 30 s was passed by 0.1 s at a load of 17).
BOUND = 30.0
ALL_FORMATS = ["txt", "json", "verbose_json", "srt", "vtt", "lrc", "tsv", "md"]


def once_within(
    setup: Setup,
    answer: Reply,
    formats: list[str] = ALL_FORMATS,
    seconds: float = BOUND,
    audio: float = 0.5,
) -> DaemonProcess:
    """``dropscribe once`` on one recording of ``audio`` seconds answered with ``answer``
    and written as ``formats``; it must end, job and all, within ``seconds`` of being
    started. A long recording is sampled at 1 kHz (4 MB an hour): an answer is held to
    the recording's probed length (attack20), so one that needs thousands of seconds to
    be taken comes from that much audio."""
    setup.data["defaults"]["formats"] = formats
    setup.data["endpoints"]["local"]["max_attempts"] = 1
    setup.api.script.append(answer)
    if audio > 1:
        make_wav(setup.inbox / "a.wav", seconds=audio, rate=1000, freq=100)
    else:
        make_wav(setup.inbox / "a.wav", seconds=audio)
    started = time.monotonic()
    daemon = DaemonProcess(setup, command="once")
    try:
        daemon.wait(timeout=seconds)
    finally:
        daemon.kill()
    elapsed = time.monotonic() - started
    assert elapsed < patience(seconds), f"took {elapsed:.1f} s"
    return daemon


def failed_with(daemon: DaemonProcess, words: str) -> None:
    (failed,) = daemon.named("file.failed")
    assert words in failed["error"], failed["error"]
    assert not daemon.named("file.done")


def done(setup: Setup, daemon: DaemonProcess) -> dict[str, str]:
    """The sidecars of a.wav, each checked to be well-formed."""
    assert daemon.named("file.done"), [e["event"] for e in daemon.events]
    out = {fmt: (setup.inbox / f"a.{fmt}").read_text() for fmt in ("txt", "srt", "vtt")}
    srt_cues(out["srt"])
    vtt_cues(out["vtt"])
    return out


@pytest.mark.parametrize(
    "body",
    [
        "<" * 1_000_000,  # <[^>]+> tried from every < to the end
        "<title>" * 150_000,  # <title>(.*?)</title> the same
        "<title>" + "<a " * 300_000 + "</title>",
    ],
    ids=["open-brackets", "open-titles", "unclosed-tags-in-title"],
)
def test_an_error_body_of_a_megabyte_of_brackets_fails_the_file_in_seconds(setup, body):
    """A 400 whose HTML body is a megabyte of unclosed tags: the file fails within the
    bound with the status in its reason (the body was scanned quadratically)."""
    daemon = once_within(setup, Reply(400, body, content_type="text/html"))
    failed_with(daemon, "HTTP 400")


def test_an_answer_that_is_not_json_but_brackets_fails_in_seconds(setup):
    """A 200 whose body is a megabyte of '<' and no JSON: 'answer is not JSON' within the bound."""
    daemon = once_within(setup, Reply(200, "<" * 1_000_000, content_type="text/html"))
    failed_with(daemon, "answer is not JSON")


def segments(count: int, **fields: Any) -> list[dict[str, Any]]:
    return [
        {"start": n * 0.05, "end": n * 0.05 + 0.05, "text": "w", **fields} for n in range(count)
    ]


def test_twenty_thousand_speakers_are_refused_in_seconds(setup):
    """20,000 distinct speaker labels (each took a walk from 'A' again): the answer is
    refused, naming the count and the cap, within the bound."""
    segs = [{**s, "speaker": f"speaker_{n}"} for n, s in enumerate(segments(20_000))]
    answer = Reply(200, {"text": "w", "duration": 2000.0, "segments": segs})
    daemon = once_within(setup, answer, audio=2000.0)  # 1.6 MB: answers21 holds 0.5 s to 1 MiB
    failed_with(daemon, "answer names 20,000 speakers; at most 100")


@pytest.mark.parametrize(
    ("word", "text"),
    [
        ("w", "ww"),  # word parts written without spaces: one ever-growing piece
        (" 000", "0 0"),  # digit groups of one number
        (" Mr.", "M r"),  # a title and its name, again and again
    ],
    ids=["glued", "digit-groups", "titles"],
)
def test_twenty_thousand_words_at_one_instant_make_sane_cues_in_seconds(setup, word, text):
    """20,000 words all at 0.0 s that the cue rules keep together: the file is done within
    the bound, its subtitles well-formed and each line within the line length."""
    words = [{"word": word, "start": 0.0, "end": 0.0}] * 20_000
    answer = Reply(200, {"text": text, "duration": 1000.0, "words": words})
    out = done(setup, once_within(setup, answer, audio=1000.0))
    cues = srt_cues(out["srt"])
    assert len(cues) > 100
    assert all(len(line) <= 42 for cue in cues for line in cue)


def test_forty_thousand_dropped_segments_and_words_are_trimmed_in_seconds(setup):
    """40,000 segments the guard drops and 40,000 words (each word was looked for in
    every dropped segment): done within the bound, the dropped text in no sidecar."""
    kept = {"start": 0.0, "end": 1.0, "text": "kept words"}
    unsure = segments(40_000, no_speech_prob=0.9, avg_logprob=-2.0)
    words = [{"word": " w", "start": s["start"] + 1, "end": s["end"] + 1} for s in unsure]
    for s in unsure:
        s["start"] += 1
        s["end"] += 1
    answer = Reply(
        200, {"text": "kept words", "duration": 4000.0, "segments": [kept, *unsure], "words": words}
    )
    out = done(setup, once_within(setup, answer, ["txt", "srt", "vtt"], audio=4000.0))
    assert out["txt"] == "kept words\n"
    assert [cue for _, cue in vtt_cues(out["vtt"])] == ["kept words"]


def test_a_run_of_repeats_after_a_long_segment_is_trimmed_in_seconds(setup):
    """A 200 kB segment followed by 40,000 short repeats at the end of the recording (its
    words were read again for each): done within the bound, the repeats left out."""
    first = {"start": 1972.0, "end": 1973.0, "text": "long " * 40_000 + "w"}
    tail = [
        {"start": 1973 + n * 0.0007, "end": 1973.001 + n * 0.0007, "text": "w"}
        for n in range(40_000)
    ]
    answer = Reply(200, {"text": "long w", "duration": 2001.0, "segments": [first, *tail]})
    daemon = once_within(setup, answer, ["txt"], audio=2001.0)
    assert daemon.named("file.done")
    assert (setup.inbox / "a.txt").read_text() == "long " * 40_000 + "w\n"


def test_more_words_than_the_audio_can_hold_are_refused(setup):
    """10,000 words for 10 s of audio (at most 20 a second, 2,000 at least): refused with
    the count and the cap, not rendered."""
    words = [{"word": " w", "start": n * 0.001, "end": n * 0.001} for n in range(10_000)]
    answer = Reply(200, {"text": "w w", "duration": 10.0, "words": words})
    daemon = once_within(setup, answer)
    failed_with(daemon, "answer has 10,000 words for 10 s of audio; at most 2,000")


# ---------------------------------------------------------------- well-formed sidecars

HOSTILE_LABEL = "A\n\n9\n00:00:09,000 --> 00:00:10,000\n<b>forged</b>\t[00:09.00]"
HOSTILE_TEXT = "one\n\n--> two\tthree <b>bold</b> & {\\an8} [00:01.00] ---> &amp;"
TEXT_FIRST = "[00:01.00]# heading\n\n---\n1. list\n\nWEBVTT"


def test_labels_and_text_cannot_forge_structure_in_any_sidecar(setup):
    """Speaker labels and text with blank lines, arrows, tabs, tags and lrc stamps: every
    sidecar parses back strictly into exactly the three cues, rows or paragraphs said."""
    segs = [
        {"start": 0.0, "end": 1.0, "text": HOSTILE_TEXT, "speaker": HOSTILE_LABEL},
        {"start": 3.0, "end": 4.0, "text": TEXT_FIRST, "speaker": HOSTILE_LABEL},
        {"start": 6.0, "end": 7.0, "text": "last words", "speaker": "B\t<i>x</i>\n\n# B"},
    ]
    setup.data["defaults"]["subtitles"] = {"line_length": 200, "lines": 4}
    answer = Reply(200, {"text": "one two", "duration": 8.0, "segments": segs})
    daemon = once_within(setup, answer)
    assert daemon.named("file.done")
    read = {fmt: (setup.inbox / f"a.{fmt}").read_text() for fmt in ALL_FORMATS if "json" not in fmt}

    srt = srt_cues(read["srt"])
    assert len(srt) == 3
    assert srt[0][0].startswith(
        "A 9 00:00:09,000 -> 00:00:10,000 \u2039b>forged\u2039/b> [00:09.00]: one -> two"
    )
    vtt = vtt_cues(read["vtt"])
    assert [voice for voice, _ in vtt] == [
        "A 9 00:00:09,000 --> 00:00:10,000 <b>forged</b> [00:09.00]",
        "A 9 00:00:09,000 --> 00:00:10,000 <b>forged</b> [00:09.00]",
        "B <i>x</i> # B",
    ]
    assert vtt[0][1] == "one --> two three <b>bold</b> & {\\an8} [00:01.00] ---> &amp;"

    lrc = read["lrc"].splitlines()
    assert all(re.fullmatch(r"\[\d\d:\d\d\.\d\d\][^\[\]<>]*", line) for line in lrc), lrc
    assert len([line for line in lrc if line[10:]]) == 3

    tsv = [row.split("\t") for row in read["tsv"].splitlines()]
    assert [len(row) for row in tsv] == [4, 4, 4, 4]

    paragraphs = read["txt"].rstrip("\n").split("\n\n")
    assert len(paragraphs) == 3
    assert all(p and "\n" not in p for p in paragraphs)

    body = read["md"].split("---\n", 2)[2].strip("\n").split("\n\n")
    assert len(body) == 4  # the title, then the three paragraphs
    assert body[0] == "# a"
    for paragraph in body[1:]:
        found = re.fullmatch(r"(?:\*\*(.+?):\*\* )?(.+)", paragraph)
        assert found, paragraph
        label, text = found.groups()
        if label is None:
            assert not re.match(r"[#>+\-~]|\d+[.)]", text), paragraph
        for part in (label or "", text):
            assert not re.search(r"(?<!\\)[<`\[\]*_]", part), paragraph


# A strict reading of what we write: every block a cue, nothing left over.
SRT_TIMES = re.compile(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}")
VTT_TIMES = re.compile(r"\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}")
VTT_CUE = re.compile(r"(?:<v ([^<>]*)>)?([^<>]*?)(?:</v>)?")
VTT_ENTITY = re.compile(r"&(amp|lt|gt);")


def srt_cues(text: str) -> list[list[str]]:
    """The cues of an srt file, read strictly: numbered from 1, one time line, text lines
    that are neither empty nor hold an arrow or a tag; blocks parted by one blank line."""
    assert text.endswith("\n")
    assert "\n\n\n" not in text
    cues = []
    for n, block in enumerate(text[:-1].split("\n\n"), 1):
        number, times, *lines = block.split("\n")
        assert number == str(n), block
        assert SRT_TIMES.fullmatch(times), block
        assert lines, block
        for line in lines:
            assert line.strip(), block
            assert "-->" not in line, block
            assert not re.search(r"</?[A-Za-z]|\{\\", line), block
        cues.append(lines)
    return cues


def vtt_cues(text: str) -> list[tuple[str | None, str]]:
    """The cues of a WebVTT file, read strictly: the header, then blocks of one time line
    and text in which '<' is only a voice span's and '&' only an entity's; each cue as
    (its voice, its text) with the entities read back."""
    assert text.startswith("WEBVTT\n\n")
    assert text.endswith("\n")
    assert "\n\n\n" not in text
    cues = []
    for block in text[len("WEBVTT\n\n") : -1].split("\n\n"):
        times, *lines = block.split("\n")
        assert VTT_TIMES.fullmatch(times), block
        assert lines, block
        assert all(line.strip() and "-->" not in line for line in lines), block
        found = VTT_CUE.fullmatch("\n".join(lines))
        assert found, block
        voice, body = found.groups()
        for part in (voice or "", body):
            assert "&" not in VTT_ENTITY.sub("", part), block

        def read(part: str) -> str:
            return VTT_ENTITY.sub(lambda m: {"amp": "&", "lt": "<", "gt": ">"}[m[1]], part)

        cues.append((read(voice) if voice is not None else None, read(body).replace("\n", " ")))
    return cues

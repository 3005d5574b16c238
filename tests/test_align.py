"""Local timing through the real ``dropscribe`` process: a text-only model's answer (as
gpt-transcribe gives it, PROTOCOL.md 7.2) timed word by word on this machine against real
espeak-ng speech whose word times are known."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from conftest import API_KEY, DaemonProcess, patience
from fakeapi import FakeAPI
from test_align_speech import RATE, Spoken, spoken

if TYPE_CHECKING:
    from conftest import Setup

PARAGRAPHS = (
    "Good morning everyone. Our meeting began at nine with a short review of the budget.",
    "Two new people joined the team, and both of them work from the northern office.",
    "After lunch we talked about the website, which needs a faster search page.",
    "The last item was the summer party, planned for the second week of July.",
    "Everyone agreed to send their notes by Friday, and the meeting ended early.",
)
GAPS = (0.4, 1.5, 0.7, 2.2, 1.0)  # seconds of quiet before each paragraph


def meeting() -> Spoken:
    """The paragraphs spoken with pauses between them, and every word's true times."""
    parts: list[np.ndarray] = []
    words: list[tuple[str, float, float]] = []
    at = 0.0
    for text, gap in zip(PARAGRAPHS, GAPS, strict=True):
        said = spoken(text, gap=gap)
        parts.append(said.pcm)
        words += [(w, start + at, end + at) for w, start, end in said.words]
        at += said.seconds
    return Spoken(np.concatenate(parts), words)


def srt_cues(text: str) -> list[tuple[float, float, list[str]]]:
    """(start, end, words) of each cue of an srt sidecar."""
    out = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        match = re.match(r"(\S+) --> (\S+)", lines[1])
        assert match is not None
        start, end = (_seconds(t) for t in match.groups())
        out.append((start, end, " ".join(lines[2:]).split()))
    return out


def _seconds(stamp: str) -> float:
    hours, minutes, rest = stamp.replace(",", ".").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def text_only(truth: str) -> Any:
    """A server's answer with the recording's words and nothing else (the fake shapes it
    as the model's rules say)."""
    return lambda _upload: {"text": truth}


def configured(setup: Setup, api: FakeAPI, **settings: Any) -> None:
    setup.data["endpoints"]["local"]["base_url"] = api.base_url
    setup.data["defaults"].update({"settle_seconds": 0.2, **settings})
    setup.data["log"] = {"format": "json", "level": "info"}


def run_once(setup: Setup) -> DaemonProcess:
    daemon = DaemonProcess(setup, command="once")
    try:
        assert daemon.wait(timeout=patience(60)) == 0, "".join(daemon.raw[-20:])
    finally:
        daemon.kill()
    return daemon


@pytest.fixture(scope="module")
def speech() -> Spoken:
    return meeting()


def test_a_text_only_answer_is_one_request_timed_word_by_word(setup, speech):
    """gpt-transcribe with [txt, srt]: one request, right the first time; the srt holds
    every answer word once and in order, each cue starting near its first word's truth."""
    truth = " ".join(w for w, _, _ in speech.words)
    speech.write(setup.inbox / "meeting.wav")
    with FakeAPI(api_key=API_KEY, answer=text_only(truth)) as api:
        configured(setup, api, model="gpt-transcribe", formats=["txt", "srt"])
        daemon = run_once(setup)
    assert [u.reply for u in api.uploads] == ["200"]
    assert "response_format" not in api.uploads[0].fields
    assert not daemon.named("audio.spans")
    [aligned] = daemon.named("timing.aligned")
    assert aligned["words"] == len(speech.words)
    cues = srt_cues((setup.inbox / "meeting.srt").read_text())
    assert [w for _, _, said in cues for w in said] == truth.split()
    errors, at = [], 0
    for start, end, said in cues:
        first, last = speech.words[at], speech.words[at + len(said) - 1]
        errors.append(abs(start - first[1]))
        assert end >= last[2] - 0.15, f"cue {said} ends before its last word"
        at += len(said)
    assert statistics.median(errors) <= 0.1
    assert max(errors) <= 0.4
    assert (setup.inbox / "meeting.txt").read_text().split() == truth.split()


def test_align_false_keeps_the_short_spans(setup, speech):
    """align: false with a text-only model: the file goes as short spans, timed by them."""
    truth = " ".join(w for w, _, _ in speech.words)
    speech.write(setup.inbox / "meeting.wav")
    with FakeAPI(api_key=API_KEY, answer=text_only(truth)) as api:
        configured(setup, api, model="gpt-transcribe", formats=["txt", "srt"], align=False)
        daemon = run_once(setup)
    assert len(api.uploads) > 1
    assert all(u.reply == "200" for u in api.uploads)
    [spans] = daemon.named("audio.spans")
    assert "align: false" in spans["reason"]
    assert not daemon.named("timing.aligned")


def test_voxtral_3_segments_are_timed_word_by_word_right_the_first_time(setup, speech):
    """Voxtral 3 (segment times only, PROTOCOL.md 7.3) with a language, asked for srt: one
    request that is not refused (the language, no timestamps: they are had here), and the
    words of its answer timed on this machine."""
    truth = " ".join(w for w, _, _ in speech.words)
    speech.write(setup.inbox / "meeting.wav")
    with FakeAPI(api_key=API_KEY, kind="mistral", answer=text_only(truth)) as api:
        setup.data["endpoints"]["local"]["kind"] = "mistral"
        configured(setup, api, model="voxtral-mini-transcribe-3", language="en", formats=["srt"])
        daemon = run_once(setup)
    assert [u.reply for u in api.uploads] == ["200"]
    assert api.uploads[0].fields["language"] == "en"
    assert "timestamp_granularities" not in api.uploads[0].fields
    assert daemon.named("timing.aligned")
    cues = srt_cues((setup.inbox / "meeting.srt").read_text())
    assert [w for _, _, said in cues for w in said] == truth.split()
    assert cues[0][0] == pytest.approx(speech.words[0][1], abs=0.3)


def test_the_meeting_truth_is_real_speech(speech):
    """The test recording is speech with pauses: about 30 s, every word timed in order."""
    assert 20 < len(speech.pcm) / RATE < 60
    starts = [start for _, start, _ in speech.words]
    assert starts == sorted(starts)


def test_explain_says_which_timing_a_file_gets(setup):
    """`dropscribe explain` names the timing: local for gpt-transcribe, spans with align: false."""
    audio = setup.inbox / "memo.wav"
    setup.data["defaults"].update(model="gpt-transcribe", formats=["txt", "srt"])
    setup.data["inboxes"].append({"path": str(setup.root / "plain"), "align": False})
    (setup.root / "plain").mkdir()
    said = {}
    for name, path in (("aligned", audio), ("spans", setup.root / "plain" / "memo.wav")):
        said[name] = subprocess.run(
            [sys.executable, "-m", "dropscribe", "explain", "-c", str(setup.write()), str(path)],
            capture_output=True,
            text=True,
            env={**os.environ, **setup.env},
            check=False,
        ).stdout
    assert "timing: the answer's own words timed on this machine with tiny.en" in said["aligned"]
    assert "timing: short spans" in said["spans"]
    assert "align: false" in said["spans"]

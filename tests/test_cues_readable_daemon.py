"""Readable cues, paragraphs and tsv rows through the real ``dropscribe`` process: real
espeak-ng speech of the issue's meeting, answered by the fake server in verbose_json with
25-s segments and word times (issue 30, item 4)."""

from __future__ import annotations

import re
import shutil
import subprocess
import wave
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from conftest import DaemonProcess
from test_cues_readable import LATER, MONTH, SCRIPT, segmented

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Setup
    from fakeapi import Upload

VOICES = {"A": "en", "B": "en+f3"}
SENTENCE_GAP = 0.45  # seconds of silence between two sentences of one turn


def speak(folder: Path) -> tuple[Path, list[dict[str, Any]]]:
    """The script as real espeak-ng speech, each sentence synthesised on its own and
    joined with known silences; each word timed within its sentence's sound in
    proportion to its characters. Returns the WAV file (outside the inbox) and the words."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: apt-get install espeak-ng")
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / "part.wav"
    pieces: list[np.ndarray] = []
    words: list[dict[str, Any]] = []
    rate = 22050
    at = 0
    for who, sentences, pause in SCRIPT:
        for n, sentence in enumerate(sentences):
            subprocess.run(
                ["espeak-ng", "-v", VOICES[who], "-s", "170", "-w", str(part), sentence], check=True
            )
            with wave.open(str(part)) as piece:
                rate = piece.getframerate()
                samples = np.frombuffer(piece.readframes(piece.getnframes()), dtype=np.int16)
            loud = np.flatnonzero(np.abs(samples) > 300)
            first, last = int(loud[0]), int(loud[-1])
            samples = samples[first : last + 1]
            texts = sentence.split()
            total = sum(len(t) for t in texts)
            done = 0
            for text in texts:
                start = at + len(samples) * done / total
                done += len(text)
                end = at + len(samples) * done / total
                word = {"word": f" {text}", "start": round(start / rate, 3)}
                words.append(word | {"end": round(end / rate, 3), "speaker": who})
            gap = pause if n == len(sentences) - 1 else SENTENCE_GAP
            pieces += [samples, np.zeros(round(gap * rate), dtype=np.int16)]
            at += len(samples) + round(gap * rate)
    path = folder / "meeting.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.concatenate(pieces).tobytes())
    part.unlink()
    return path, words


def srt_cues(text: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of each srt cue."""
    out = []
    for block in text.strip().split("\n\n"):
        _, times, *lines = block.split("\n")
        start, end = (
            sum(float(x) * m for x, m in zip(re.split("[:,]", t)[:3], (3600, 60, 1), strict=True))
            + int(t[-3:]) / 1000
            for t in times.split(" --> ")
        )
        out.append((start, end, " ".join(lines)))
    return out


def test_the_meeting_reads_as_cues_paragraphs_and_rows(setup: Setup):
    """Real speech of the issue's meeting, answered with 25-s segments and word times:
    srt cues end at 'later.' and 'month.' with no one- or two-word cue under a second
    before a silence, txt paragraphs at the pauses and the turns, tsv rows cue-sized."""
    path, words = speak(setup.root / "speech")
    duration = words[-1]["end"] + 1.0

    def answer(upload: Upload) -> dict[str, Any]:
        return {
            "task": "transcribe",
            "language": "english",
            "duration": duration,
            "text": "".join(w["word"] for w in words).strip(),
            "segments": segmented(words),
            "words": words,
        }

    setup.api.answer = answer
    setup.data["defaults"]["formats"] = ["srt", "txt", "tsv"]
    path.rename(setup.inbox / "meeting.wav")
    daemon = DaemonProcess(setup, command="once")
    assert daemon.wait() == 0
    assert daemon.named("file.done")
    written = {e["sidecar"].rsplit("/", 1)[1] for e in daemon.named("sidecar.written")}
    assert written == {"meeting.srt", "meeting.txt", "meeting.tsv"}
    (upload,) = setup.api.uploads
    assert upload.fields["response_format"] == "verbose_json"

    spoken = [w["word"].strip() for w in words]
    cues = srt_cues((setup.inbox / "meeting.srt").read_text())
    assert " ".join(re.sub(r"^[AB]: ", "", c) for _, _, c in cues).split() == spoken
    ends = [c.split()[-1] for _, _, c in cues]
    assert "later." in ends
    assert "month." in ends
    assert all(len(c.split()) > 2 for _, _, c in cues if c.endswith("month."))
    for n, (start, end, text) in enumerate(cues):
        following = cues[n + 1][0] if n + 1 < len(cues) else duration
        if len(re.sub(r"^[AB]: ", "", text).split()) <= 2 and following - end >= 2.0:
            assert end - start >= 1.0, (start, end, text)

    txt = (setup.inbox / "meeting.txt").read_text().rstrip("\n").split("\n\n")
    assert txt[0].endswith(f"{LATER} {MONTH}")
    assert [p.split(": ", 1)[0] for p in txt if re.match(r"[AB]: ", p)] == ["A", "B", "A"]
    assert len(txt) == 5

    rows = [r.split("\t") for r in (setup.inbox / "meeting.tsv").read_text().splitlines()]
    assert rows[0] == ["start", "end", "speaker", "text"]
    assert " ".join(r[3] for r in rows[1:]).split() == spoken
    assert len(rows) - 1 > 2 * len(segmented(words))
    assert all(int(r[1]) - int(r[0]) <= 7000 for r in rows[1:])

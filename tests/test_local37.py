"""The local engine hears every word (issue 37): pieces that fill the 30-s window without
being cut in speech, and a piece decoded badly decoded again rather than dropped."""

from __future__ import annotations

import dataclasses
import random
import re
import shutil
import subprocess
import wave
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import pytest
from structlog.testing import capture_logs

from conftest import DaemonProcess

if TYPE_CHECKING:
    from pathlib import Path

    import numpy.typing as npt

PEOPLE = ["Anna", "Ben", "Carla", "David", "Emma", "Greta", "Hugo", "Jonas"]
VERBS = ["reviewed", "prepared", "discussed", "approved", "postponed", "presented", "changed"]
THINGS = [
    "the budget for next year",
    "the schedule of the release",
    "the report on customer calls",
    "the plan for the new office",
    "the list of open issues",
    "the figures from the autumn",
    "the contract with the supplier",
]
WHEN = ["on Monday morning", "before lunch", "after the break", "at the end of the month"]


def sentences(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(PEOPLE)} {rng.choice(VERBS)} {rng.choice(THINGS)} {rng.choice(WHEN)}."
        for _ in range(count)
    ]


def talk(path: Path, paragraphs: list[str], *, speed: int, pause: float) -> Path:
    """Real espeak-ng speech: each paragraph in one breath, ``pause`` seconds between."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: apt-get install espeak-ng")
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part.wav")
    staging = path.with_suffix(".staging")
    with wave.open(str(staging), "wb") as out:
        for n, text in enumerate(paragraphs):
            subprocess.run(["espeak-ng", "-s", str(speed), "-w", str(part), text], check=True)
            with wave.open(str(part)) as piece:
                if n == 0:
                    out.setparams(piece.getparams())
                rate = piece.getframerate()
                out.writeframes(piece.readframes(piece.getnframes()))
            out.writeframes(b"\0" * int(2 * rate * pause))
    part.unlink()
    staging.rename(path)
    return path


def loud(path: Path) -> tuple[npt.NDArray[np.bool_], float]:
    """Which 10-ms frames of a WAV are not silence, and a frame's length in seconds."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    frame = rate // 100
    peaks = np.abs(samples[: len(samples) // frame * frame].reshape(-1, frame)).max(axis=1)
    return peaks > 500, frame / rate


def first_sound(path: Path) -> float:
    """Seconds until the first 10 ms that is not silence."""
    frames, seconds = loud(path)
    return float(np.argmax(frames) * seconds)


def last_sound(path: Path) -> float:
    """Seconds until the end of the last 10 ms that is not silence."""
    frames, seconds = loud(path)
    return float((np.flatnonzero(frames)[-1] + 1) * seconds)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def recall(said: str, heard: str) -> float:
    got = set(words(heard))
    return sum(w in got for w in words(said)) / len(words(said))


def first_cue(srt: str) -> float:
    h, m, s = re.search(r"(\d\d):(\d\d):(\d\d,\d{3}) -->", srt).groups()  # type: ignore[union-attr]
    return int(h) * 3600 + int(m) * 60 + float(s.replace(",", "."))


@pytest.fixture
def local(setup):
    setup.data["endpoints"] = {"here": {"kind": "local"}}  # the shipped defaults
    setup.data["defaults"] = {
        "endpoint": "here",
        "model": "tiny.en",
        "settle_seconds": 0.2,
        "formats": ["txt", "srt"],
    }
    setup.data["log"] = {"format": "json", "level": "info"}
    return setup


def once(local) -> tuple[DaemonProcess, dict[str, str]]:
    """One ``dropscribe once`` from a fresh state; its process and its sidecars."""
    shutil.rmtree(local.state, ignore_errors=True)
    for old in local.inbox.glob("talk.*"):
        if old.suffix != ".wav":
            old.unlink()
    process = DaemonProcess(local, command="once")
    assert process.wait(timeout=600) == 0, process.raw[-5:]
    return process, {
        ext: (local.inbox / f"talk.{ext}").read_text(encoding="utf-8") for ext in ("txt", "srt")
    }


@pytest.mark.slow
def test_four_minutes_of_talk_start_with_the_first_sentence_the_same_every_run(local):
    """Four minutes of talk in long paragraphs (pauses under 0.8 s between sentences)
    through `dropscribe once`: the sidecars start with the first sentence, the first cue
    within 0.5 s of the first word, nothing trimmed away, and a second run writes the
    same sidecars byte for byte."""
    said = sentences(64, seed=1)
    paragraphs = [" ".join(said[n : n + 16]) for n in range(0, len(said), 16)]
    wav = talk(local.inbox / "talk.wav", paragraphs, speed=160, pause=1.0)
    first, sidecars = once(local)
    txt = sidecars["txt"]
    first_said, head = words(said[0]), words(txt)[: len(words(said[0])) + 2]
    assert head[0] == first_said[0], txt[:200]
    assert sum(w in head for w in first_said) / len(first_said) >= 0.6, txt[:200]
    assert abs(first_cue(sidecars["srt"]) - first_sound(wav)) <= 0.5, sidecars["srt"][:200]
    assert recall(" ".join(said), txt) >= 0.9
    assert not first.named("transcript.trimmed"), first.named("transcript.trimmed")
    _, again = once(local)
    assert again == sidecars, "the same recording gave another transcript"


@pytest.mark.slow
def test_a_piece_decoded_badly_is_decoded_again_not_dropped(local):
    """75 s of run-on speech (no pause the VAD could cut at, so pieces are cut in speech):
    the batched pass decodes them badly, each is decoded again (piece.redecoded) and the
    sidecars hold the words, none trimmed away."""
    said = " ".join(s.rstrip(".") for s in sentences(30, seed=2))
    talk(local.inbox / "talk.wav", [said], speed=200, pause=1.0)
    process, sidecars = once(local)
    assert process.named("piece.redecoded")
    assert recall(said, sidecars["txt"]) >= 0.75, sidecars["txt"]
    assert not process.named("transcript.trimmed"), process.named("transcript.trimmed")


def test_speech_is_joined_only_across_a_slice_edge():
    """VAD speech is one again where it runs over a slice's edge; neighbours that merely
    touch (Silero's padding over a short pause) stay apart, so they can pair up in 30 s."""
    from dropscribe.transcribe.batched import joined

    step = 100
    slices = [[(0, 40), (40, 100)], [(100, 130), (130, 180)], [(210, 260)]]
    assert joined(slices, step) == [(0, 40), (40, 130), (130, 180), (210, 260)]


def test_speech_without_silence_is_cut_in_equal_parts_short_of_the_window():
    """Speech longer than 30 s with no silence is cut in equal parts of at most the cut
    length, never at the 30-s edge; shorter speech is gathered up to 30 s."""
    from dropscribe.transcribe.batched import gathered

    s = 16000
    speech = [(0, 5 * s), (6 * s, 20 * s), (21 * s, 40 * s), (41 * s, 120 * s)]
    assert gathered(speech, 30 * s, 26 * s) == [
        (0, 20 * s),
        (21 * s, 40 * s),
        (41 * s, 41 * s + 79 * s // 4),
        (41 * s + 79 * s // 4, 41 * s + 79 * s // 2),
        (41 * s + 79 * s // 2, 41 * s + 3 * 79 * s // 4),
        (41 * s + 3 * 79 * s // 4, 120 * s),
    ]


def segment(text: str, start: float, end: float, **signs: float) -> SimpleNamespace:
    values = {"compression_ratio": 1.5, "avg_logprob": -0.3, "no_speech_prob": 0.1} | signs
    return SimpleNamespace(text=text, start=start, end=end, words=None, **values)


class Decoder:
    """A model that gives its answers in turn, noting (seconds of audio, temperature)."""

    def __init__(self, answers):
        self.answers = iter(answers)
        self.calls = []

    def transcribe(self, samples, **options):
        self.calls.append((round(len(samples) / 16000), options["temperature"]))
        return iter(next(self.answers)), None


def test_a_flagged_piece_is_halved_until_it_decodes_and_only_unheard_speech_is_left_out():
    """redo.again: a 32-s piece whose decode loops is halved at its quietest moment; a half
    that decodes well is kept, the other halved again to 8 s and decoded with temperature
    fallback; only what that last decode calls no speech is left out, with a warning."""
    from dropscribe.transcribe import redo

    samples = np.ones(32 * 16000, dtype=np.float32)
    for quiet in (16, 24):  # the quiet moments: where the halves are cut
        samples[quiet * 16000 : quiet * 16000 + 320] = 0
    loop = segment("wheel " * 40, 0, 30, compression_ratio=3.2)
    hum = segment("hum", 4, 8, no_speech_prob=0.9, avg_logprob=-1.5)
    model = Decoder(
        [
            [loop],
            [segment("first half", 0, 15)],
            [loop],
            [segment("kept", 0, 3), hum],
            [segment("kept", 0, 3), hum],
        ]
    )
    with capture_logs() as logs:
        found = redo.again(model, samples, 100.0, {"language": "en"}, iter)
    assert model.calls == [
        (32, 0.0),
        (16, 0.0),
        (16, 0.0),
        (8, redo.FALLBACK),
        (8, redo.FALLBACK),
    ]
    assert [(at, s.text) for at, s in found] == [
        (100.0, "first half"),
        (116.0, "kept"),
        (124.0, "kept"),
    ]
    unheard = [e for e in logs if e["event"] == "speech.unheard"]
    assert [(e["start"], e["end"], e["log_level"]) for e in unheard] == [
        (120.0, 124.0, "warning"),
        (128.0, 132.0, "warning"),
    ]


def test_a_batched_segment_is_cut_at_the_pauses_the_vad_heard_in_its_piece():
    """A piece's one segment becomes a part per side of each VAD pause (by each word's
    middle), no part reaching into the pause; with no pause or no words it is as it was."""
    from dropscribe.transcribe.batched import at_pauses

    said = [
        SimpleNamespace(word=" Good", start=0.0, end=0.4),
        SimpleNamespace(word=" morning.", start=0.4, end=3.0),  # stretched into the pause
        SimpleNamespace(word=" Next", start=4.5, end=4.9),
        SimpleNamespace(word=" item.", start=4.9, end=5.4),
    ]
    whole = segment(" Good morning. Next item.", 0.0, 5.4)
    whole.words = said
    whole.tokens = [1, 2]
    whole = SegmentLike(**vars(whole))
    parts = at_pauses(whole, [(1.2, 4.4)])
    assert [(p.start, p.end, p.text, len(p.words)) for p in parts] == [
        (0.0, 1.2, " Good morning.", 2),
        (4.5, 5.4, " Next item.", 2),
    ]
    assert at_pauses(whole, []) == [whole]
    assert at_pauses(whole, [(6.0, 8.0)]) == [whole]


@dataclasses.dataclass
class SegmentLike:
    """faster-whisper's Segment, as far as the engine reads it."""

    text: str
    start: float
    end: float
    words: list
    tokens: list
    compression_ratio: float
    avg_logprob: float
    no_speech_prob: float

"""audio_track: real multi-track files (PyAV muxes two audio streams with language tags),
through the real dropscribe process against the fake API, and the local engine."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import pytest

from conftest import API_KEY, DaemonProcess, Setup, patience
from dropscribe.audio import probe
from dropscribe.jobs import tracks as tracksmod
from dropscribe.vocab import languages
from fakeapi import FakeAPI, tone_answer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from dropscribe.audio.probe import Track

RATE = 16000
pytestmark = pytest.mark.slow


def tone(hertz: int, start: float, end: float, seconds: float) -> np.ndarray:
    """A sine tone from ``start`` to ``end`` over silence, as 16-bit samples."""
    t = np.arange(round(seconds * RATE)) / RATE
    inside = (t >= start) & (t < end)
    signal = np.where(inside, 0.3 * np.sin(2 * np.pi * hertz * t), 0.0)
    return (signal * 32767).astype(np.int16)


def write_tracks(
    path: Path, streams: list[tuple[str | None, np.ndarray]], container: str = "mp4"
) -> Path:
    """A file of several audio streams, each with its language tag (None: none)."""
    codec = "aac" if container in {"mp4", "mov"} else "libopus"
    with av.open(str(path), "w", format=container) as out:
        made = []
        for language, pcm in streams:
            stream: Any = out.add_stream(codec, rate=RATE if codec == "aac" else 48000)
            stream.layout = "mono"
            if language:
                stream.metadata["language"] = language
            made.append((stream, pcm))
        for stream, pcm in made:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=stream.rate)
            step = RATE // 10
            for first in range(0, len(pcm), step):
                block = pcm[None, first : first + step].copy()
                frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
                frame.sample_rate, frame.pts = RATE, first
                for out_frame in resampler.resample(frame):
                    out_frame.pts = None
                    out.mux(stream.encode(out_frame))
            out.mux(stream.encode(None))
    return path


@pytest.fixture
def toned(setup: Setup) -> Iterator[Setup]:
    """The fake API hears tones: a transcript says which tone the upload held first."""
    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True) as api:
        setup.api = api
        setup.data["endpoints"]["local"]["base_url"] = api.base_url
        yield setup


def two_tracks(setup: Setup, name: str = "movie.mp4") -> Path:
    """English at 440 Hz, then German at 880 Hz, each in its own stream."""
    return write_tracks(
        setup.inbox / name,
        [("eng", tone(440, 0.5, 1.5, 2.5)), ("deu", tone(880, 0.5, 1.5, 2.5))],
    )


def once(setup: Setup) -> tuple[int, DaemonProcess]:
    daemon = DaemonProcess(setup, command="once")
    return daemon.wait(60), daemon


def test_all_tracks_are_each_transcribed_alone_in_their_own_names(toned: Setup) -> None:
    """audio_track: all gives one job per track, each sent alone, written as name.<lang>.*;
    a second run sends nothing."""
    two_tracks(toned)
    toned.data["defaults"].update({"audio_track": "all", "formats": ["txt", "srt"]})
    code, daemon = once(toned)
    assert code == 0
    inbox = toned.inbox
    assert (inbox / "movie.en.txt").read_text() == "tone 440\n"
    assert (inbox / "movie.de.txt").read_text() == "tone 880\n"
    assert "tone 880" in (inbox / "movie.de.srt").read_text()
    assert not (inbox / "movie.txt").exists()
    names = [u.filename for u in toned.api.uploads]
    assert sorted(names) == ["movie.mp4", "movie.track1.flac"]
    (tracks,) = daemon.named("audio.tracks")
    assert tracks["taken"] == [0, 1]
    assert [t["language"] for t in tracks["tracks"]] == ["eng", "deu"]
    (done,) = daemon.named("file.done")
    assert done["tracks"] == [0, 1]
    assert len(done["outputs"]) == 4
    again, daemon = once(toned)
    assert again == 0
    assert len(toned.api.uploads) == 2
    assert daemon.named("file.done") == []


def test_a_language_tag_takes_that_track_alone(toned: Setup) -> None:
    """audio_track: ger (ISO 639-2/B) matches the stream tagged deu: only that track is sent,
    and its sidecars keep the file's own names."""
    two_tracks(toned)
    toned.data["defaults"].update({"audio_track": "ger"})
    code, _ = once(toned)
    assert code == 0
    assert (toned.inbox / "movie.txt").read_text() == "tone 880\n"
    (upload,) = toned.api.uploads
    assert upload.filename == "movie.track1.flac"


def test_changing_the_choice_reuses_a_track_already_transcribed(toned: Setup) -> None:
    """Track 0 transcribed by default, then audio_track: all with rerun_on_change: only the
    second track is sent; the first comes from the ledger."""
    two_tracks(toned)
    code, _ = once(toned)
    assert code == 0
    assert (toned.inbox / "movie.txt").read_text() == "tone 440\n"
    toned.data["defaults"].update({"audio_track": ["eng", 1], "rerun_on_change": True})
    code, daemon = once(toned)
    assert code == 0
    assert [u.filename for u in toned.api.uploads] == ["movie.mp4", "movie.track1.flac"]
    assert len(daemon.named("transcript.reused")) == 1
    assert (toned.inbox / "movie.en.txt").read_text() == "tone 440\n"
    assert (toned.inbox / "movie.de.txt").read_text() == "tone 880\n"


def test_a_file_without_the_wanted_track_fails_naming_its_tracks(toned: Setup) -> None:
    """audio_track: fr on an English and German file: quarantined, the reason names both
    tracks; nothing is sent."""
    two_tracks(toned)
    toned.data["defaults"].update({"audio_track": "fr"})
    code, daemon = once(toned)
    assert code == 1
    (failed,) = daemon.named("file.failed")
    assert failed["error"] == (
        "no audio track matches audio_track: fr; the file has 0 (eng), 1 (deu)"
    )
    assert failed["quarantined"]
    assert toned.api.uploads == []


def test_explain_lists_the_tracks_and_which_are_taken(toned: Setup) -> None:
    """explain names every audio track of the file and the ones the folder takes."""
    path = two_tracks(toned)
    toned.data["defaults"].update({"audio_track": "all"})
    shown = subprocess.run(
        [sys.executable, "-m", "dropscribe", "explain", "-c", str(toned.write()), str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=patience(30),
    )
    assert "  audio tracks: 0 (eng), 1 (deu)\n" in shown.stdout
    assert "    taken: 0 (eng) as movie.en.*, 1 (deu) as movie.de.*\n" in shown.stdout


def test_the_local_engine_hears_the_chosen_track(setup: Setup) -> None:
    """kind: local, audio_track: 1: tiny.en transcribes the second stream's speech, not the
    first's."""
    from test_align_speech import spoken

    first = spoken("The weather is cold and grey today.").pcm
    second = spoken("Please send the budget figures by Friday.").pcm
    write_tracks(setup.inbox / "talk.mp4", [("eng", first), ("eng", second)])
    setup.data["endpoints"] = {"here": {"kind": "local", "cpu_threads": 2}}
    setup.data["defaults"] = {
        "endpoint": "here",
        "model": "tiny.en",
        "settle_seconds": 0.2,
        "audio_track": 1,
    }
    code, _ = once(setup)
    assert code == 0
    text = (setup.inbox / "talk.txt").read_text().lower()
    assert "budget" in text
    assert "weather" not in text


# ------------------------------------------------------------ the pure parts


def track(index: int, language: str | None) -> Track:
    return probe.Track(index, language, "aac", 1)


def test_choose_matches_either_code_and_lists_keep_what_is_there() -> None:
    """Tags match 639-1, 639-2/T and /B both ways; a list takes the tracks that are there."""
    found = [track(0, "eng"), track(1, "ger"), track(2, None)]
    assert [t.index for t in tracksmod.choose("de", found)] == [1]
    assert [t.index for t in tracksmod.choose("deu", found)] == [1]
    assert [t.index for t in tracksmod.choose(("en", "fr"), found)] == [0]
    assert [t.index for t in tracksmod.choose(2, found)] == [2]
    assert [t.index for t in tracksmod.choose("all", found)] == [0, 1, 2]


def test_suffixes_name_a_track_by_language_unless_two_share_it() -> None:
    """Two tracks of one language, or none, are named track<N>; one track takes no suffix."""
    taken = [track(0, "eng"), track(1, "en"), track(2, "fre"), track(3, None)]
    assert tracksmod.suffixes(taken) == {0: "track0", 1: "track1", 2: "fr", 3: "track3"}
    assert tracksmod.suffixes(taken[:1]) == {0: None}


def test_languages_normalise_to_one_code() -> None:
    """de, deu, ger and de-DE are one language; und and unknown codes are none."""
    assert {languages.normal(t) for t in ("de", "deu", "ger", "de-DE", "DEU")} == {"de"}
    assert languages.normal("und") is None
    assert languages.normal("xx") is None
    assert languages.normal("gsw") == "gsw"

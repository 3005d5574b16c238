"""short18: a recording cut short (a copy or sync that broke off, a recorder that lost
power) is said with ``audio.short`` before it is sent, whatever the engine; what was
heard is still written, and the JSON sidecars and ``explain`` say it was cut short.
The files are real: written with PyAV, ``wave`` and espeak-ng, cut with ``truncate``."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import wave
from typing import TYPE_CHECKING

import pytest

from conftest import make_wav, named, wait_for, write_tones
from dropscribe.service import Daemon

if TYPE_CHECKING:
    from pathlib import Path

    from fakeapi import FakeAPI

SECONDS = 30.0
TONES = [(3.0 * n, 3.0 * n + 2.0, 300 + 100 * n) for n in range(10)]  # one every 3 s


def cut_to_a_third(path: Path) -> Path:
    """``path`` cut to a third of its bytes, as a broken copy leaves it."""
    size = path.stat().st_size
    subprocess.run(["truncate", "-s", str(size // 3), str(path)], check=True)
    return path


def flac(path: Path) -> Path:
    return write_tones(path, TONES, SECONDS, container="flac", codec="flac")


def opus(path: Path) -> Path:
    return write_tones(path, TONES, SECONDS, rate=48000, container="ogg", codec="libopus")


def speak(path: Path, text: str) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: apt-get install espeak-ng")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True)
    return path


def run_once(setup, api: FakeAPI) -> None:
    setup.data["endpoints"]["local"]["base_url"] = api.base_url
    setup.data["defaults"]["formats"] = ["txt", "json", "verbose_json"]
    assert Daemon(setup.load()).run(threading.Event(), once=True) == 0


def test_a_flac_cut_to_a_third_is_said_and_kept_and_a_whole_one_beside_it_is_not(
    setup, api, events
):
    """A 30-s FLAC cut to a third: audio.short (30 s declared, about 10 s decoded, what to
    do) before it is sent, its transcript still written, json, verbose_json and explain saying it was cut;
    the whole FLAC beside it says nothing of the kind."""
    cut = cut_to_a_third(flac(setup.inbox / "cut.flac"))
    flac(setup.inbox / "whole.flac")
    run_once(setup, api)
    (short,) = named(events, "audio.short")
    assert short["path"] == str(cut)
    assert short["declared_seconds"] == SECONDS
    assert 8.0 < short["decoded_seconds"] < 11.0
    assert "cut short" in short["action"]
    assert f"only its first {short['decoded_seconds']:.1f} s" in short["action"]
    assert "Copy the whole file again" in short["action"]
    assert len(named(events, "file.done")) == 2
    assert (setup.inbox / "cut.txt").read_text().strip()  # what was heard is kept
    expected = {"declared_seconds": SECONDS, "decoded_seconds": short["decoded_seconds"]}
    assert json.loads((setup.inbox / "cut.json").read_text())["cut_short"] == expected
    assert json.loads((setup.inbox / "cut.verbose.json").read_text())["cut_short"] == expected
    assert "cut_short" not in json.loads((setup.inbox / "whole.json").read_text())
    explained = setup.command("explain", str(cut)).stdout
    assert "cut short: the recording looks cut short: its header declares 30.0 s" in explained
    assert "cut short" not in setup.command("explain", str(setup.inbox / "whole.flac")).stdout


def test_an_ogg_opus_cut_to_a_third_is_said_though_ogg_declares_no_length(setup, api, events):
    """An Ogg/Opus file cut to a third ends inside a page: audio.short with no declared
    length (Ogg has none) and about 10 s decoded; the whole one beside it is not said."""
    cut = cut_to_a_third(opus(setup.inbox / "cut.ogg"))
    opus(setup.inbox / "whole.ogg")
    run_once(setup, api)
    (short,) = named(events, "audio.short")
    assert short["path"] == str(cut)
    assert short["declared_seconds"] is None
    assert 8.0 < short["decoded_seconds"] < 11.0
    assert "without the page that ends an Ogg stream" in short["action"]
    assert len(named(events, "file.done")) == 2
    kept = json.loads((setup.inbox / "cut.json").read_text())["cut_short"]
    assert kept == {"declared_seconds": None, "decoded_seconds": short["decoded_seconds"]}


def test_a_wav_whose_header_claims_ten_hours_and_holds_two_seconds_is_said(setup, api, events):
    """A WAV header claiming 10 h over 2 s of audio: audio.short (36000 s declared, 2 s
    decoded); espeak-ng's WAV and a WAV from ``wave`` beside it are not said."""
    lie = make_wav(setup.inbox / "lie.wav", seconds=2.0)
    data = bytearray(lie.read_bytes())
    claimed = 16000 * 2 * 36000  # 10 h of 16 kHz 16-bit mono
    data[4:8] = (claimed + 36).to_bytes(4, "little")
    data[40:44] = claimed.to_bytes(4, "little")
    lie.write_bytes(bytes(data))
    make_wav(setup.inbox / "tone.wav", seconds=3.0)
    speak(setup.inbox / "memo.wav", "A short memo, spoken whole, from its first word to its last.")
    run_once(setup, api)
    (short,) = named(events, "audio.short")
    assert short["path"] == str(lie)
    assert (short["declared_seconds"], short["decoded_seconds"]) == (36000.0, 2.0)
    assert len(named(events, "file.done")) == 3


WHOLE = {
    "flac": {"container": "flac", "codec": "flac", "rate": 44100, "channels": 2},
    "opus": {"container": "ogg", "codec": "libopus", "rate": 48000},
    "webm": {"container": "webm", "codec": "libopus", "rate": 48000},
    "mp3": {"container": "mp3", "codec": "libmp3lame", "rate": 44100},
    "m4a": {"container": "ipod", "codec": "aac", "rate": 48000},
    "mka": {"container": "matroska", "codec": "flac"},
    "wav": {},
}


@pytest.mark.parametrize("kind", list(WHOLE))
def test_whole_files_are_never_short_and_cut_ones_are(tmp_path, kind):
    """Whole files PyAV and ``wave`` write (FLAC, Opus in Ogg and WebM, MP3, AAC,
    Matroska, WAV) are not short; cut to a half, each that can be read is, by about
    half its length (an MP4 whose index is at its end cannot be read at all)."""
    from dropscribe.audio import cut, probe

    whole = write_tones(tmp_path / f"a.{kind}", TONES, SECONDS, **WHOLE[kind])
    assert cut.short(whole, probe.examine(whole)) is None
    half = tmp_path / f"half.{kind}"
    half.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    if kind == "m4a":
        return
    short = cut.short(half, probe.examine(half))
    assert short is not None
    assert abs(short.held - SECONDS / 2) < 1.5
    assert short.declared is None or short.declared == pytest.approx(SECONDS, abs=0.05)


@pytest.mark.parametrize(
    ("container", "codec", "rate"), [("mp4", "aac", 16000), ("matroska", "libopus", 48000)]
)
def test_a_video_whose_sound_stops_before_its_picture_is_not_short(
    tmp_path, container, codec, rate
):
    """A 30-s picture track with 10 s of sound (MP4, Matroska, whose header gives the
    picture's length): nothing declared of the sound, so never said to be cut short."""
    import av
    import numpy as np

    from dropscribe.audio import cut, probe

    path = tmp_path / f"video.{container}"
    with av.open(str(path), "w", format=container) as out:
        picture = out.add_stream("mpeg4", rate=10)
        picture.width, picture.height, picture.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream(codec, rate=rate, layout="mono")
        for n in range(300):
            image = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), n % 250, np.uint8), format="rgb24"
            )
            image.pts = n
            out.mux(picture.encode(image))
        out.mux(picture.encode(None))
        tone = (np.sin(np.arange(10 * rate) / 5) * 8000).astype(np.int16)
        for first in range(0, len(tone), 960):
            block = av.AudioFrame.from_ndarray(tone[None, first : first + 960], layout="mono")
            block.sample_rate, block.pts = rate, first
            out.mux(sound.encode(block))
        out.mux(sound.encode(None))
    found = probe.examine(path)
    assert (found.video, found.duration) == (True, 30.0)
    assert cut.short(path, found) is None


def test_espeak_speech_is_never_short(tmp_path):
    """espeak-ng's WAV, written to a file or to a pipe (a placeholder size), is not short."""
    from dropscribe.audio import cut, probe

    text = "Good morning. This is a recording of a few words, and nothing was cut."
    written = speak(tmp_path / "written.wav", text)
    piped = tmp_path / "piped.wav"
    piped.write_bytes(
        subprocess.run(["espeak-ng", "--stdout", text], check=True, capture_output=True).stdout
    )
    for path in (written, piped):
        assert cut.short(path, probe.examine(path)) is None
        with wave.open(str(path)) as header:
            assert header.getnframes() > 0


def test_a_cut_recording_is_said_by_the_local_engine_too(setup, events):
    """The local engine: espeak-ng speech as FLAC cut to a third is said (audio.short),
    and what was heard (its first sentence only) is written."""
    import av

    setup.data["endpoints"] = {"here": {"kind": "local", "cpu_threads": 2}}
    setup.data["defaults"] = {"endpoint": "here", "model": "tiny.en", "settle_seconds": 0.2}
    spoken = speak(
        setup.root / "memo.wav",
        "The quick brown fox jumps over the lazy dog. Please send the report to the office"
        " before noon on Friday. Thank you very much for listening to this recording.",
    )
    target = setup.inbox / "memo.flac"
    with av.open(str(spoken)) as src, av.open(str(target), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=src.streams.audio[0].rate, layout="mono")
        for frame in [*src.decode(audio=0), None]:
            out.mux(stream.encode(frame))
    cut_to_a_third(target)
    with setup.daemon():
        wait_for(lambda: named(events, "file.done"), timeout=120, what="local transcript")
    (short,) = named(events, "audio.short")
    with wave.open(str(spoken)) as header:
        declared = round(header.getnframes() / header.getframerate(), 3)
    assert short["declared_seconds"] == pytest.approx(declared, abs=0.05)
    assert declared / 4 < short["decoded_seconds"] < declared / 2
    heard = (setup.inbox / "memo.txt").read_text().lower()
    assert "lazy dog" in heard  # the first sentence, in the third that is left
    assert "friday" not in heard

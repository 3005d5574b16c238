"""Every Python users have: dropscribe decodes audio itself (never handing a path to a
library that opens it with its own PyAV call), on PyAV before 19 and after it.

Python 3.12 and 3.13 install PyAV 19, which removed ``av.open``'s ``metadata_errors``;
faster-whisper 1.2.1's own ``decode_audio`` still passes it, so the local engine's
sequential path failed every file there. The recordings here carry a Latin-1 title tag:
PyAV before 19 refuses to open such a file unless its tag errors are ignored.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import numpy as np
import pytest

from conftest import API_KEY, DaemonProcess, write_tones
from dropscribe.audio.probe import examine
from dropscribe.audio.transcode import RATE, Samples, floats
from fakeapi import FakeAPI, tone_answer
from test_local import SPOKEN, speak, words

if TYPE_CHECKING:
    from pathlib import Path

TITLE = "Café réunion".encode("latin-1")  # not UTF-8: what older recorders write


def tagged(path: Path, title: bytes = TITLE) -> Path:
    """Give a WAV file a RIFF INFO title (``INAM``) of these raw bytes, before its data."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WAVE"
    chunks, at = [], 12
    while at + 8 <= len(data):
        name, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        chunks.append((name, data[at + 8 : at + 8 + size]))
        at += 8 + size + (size & 1)
    value = title + b"\0"
    info = b"INFOINAM" + struct.pack("<I", len(value)) + value + b"\0" * (len(value) & 1)
    ordered = [c for c in chunks if c[0] != b"data"] + [(b"LIST", info)]
    ordered += [c for c in chunks if c[0] == b"data"]
    body = b"".join(
        name + struct.pack("<I", len(part)) + part + b"\0" * (len(part) & 1)
        for name, part in ordered
    )
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
    return path


# ------------------------------------------------------------------ pure pieces


def test_floats_are_the_whole_recording_scaled_to_one(tmp_path):
    """floats() gives every sample of the first audio stream, resampled to 16 kHz, as
    float32 within [-1, 1]: what faster-whisper is handed instead of a path."""
    wav = tagged(write_tones(tmp_path / "tone.wav", [(0.0, 2.0, 440)], 2.0, rate=44100))
    audio = floats(Samples(wav))
    assert audio.dtype == np.float32
    assert abs(len(audio) - 2 * RATE) <= 32
    assert 0.25 < float(np.abs(audio).max()) <= 1.0


def test_a_recording_with_a_latin1_tag_is_probed_and_decoded(tmp_path):
    """A tag that is not UTF-8 stops neither FFmpeg's probe (a float WAV, which the
    standard library does not read) nor the decoding."""
    tone = write_tones(
        tmp_path / "tone.wav", [(0.0, 1.0, 440)], 1.0, container="wav", codec="pcm_f32le"
    )
    wav = tagged(tone)
    probed = examine(wav)
    assert (probed.container, probed.codec, probed.streams) == ("wav", "pcm_f32le", 1)
    assert len(floats(Samples(wav))) == pytest.approx(RATE, abs=32)


# ------------------------------------------------------------------ the real process


@pytest.mark.slow
@pytest.mark.parametrize("sequential", [{"vad": False}, {"batch_size": 1}])
def test_the_local_engines_sequential_path_transcribes_a_tagged_recording(setup, sequential):
    """``vad: false`` or ``batch_size: 1`` (faster-whisper's own transcribe, one window
    at a time): ``dropscribe once`` transcribes a recording with a Latin-1 tag, exits 0,
    and writes the words that were said."""
    setup.data["endpoints"] = {"here": {"kind": "local", "cpu_threads": 2, **sequential}}
    setup.data["defaults"] = {"endpoint": "here", "model": "tiny.en", "settle_seconds": 0.2}
    setup.data["log"] = {"format": "json", "level": "info"}
    tagged(speak(setup.inbox / "memo.wav"))
    process = DaemonProcess(setup, command="once")
    assert process.wait(timeout=180) == 0, process.raw[-5:]
    assert not process.named("file.failed")
    assert process.named("file.done")
    heard = set(words((setup.inbox / "memo.txt").read_text()))
    said = words(SPOKEN)
    assert sum(w in heard for w in said) / len(said) >= 0.8, heard
    assert not setup.api.uploads, "nothing left the machine"


@pytest.mark.slow
def test_an_api_upload_of_a_tagged_recording_is_heard_by_the_server(setup):
    """``dropscribe once`` against the test server, which decodes every upload: a WAV with
    a Latin-1 tag arrives whole (its length and its two tones), and the srt says so."""
    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True) as api:
        setup.api = api
        setup.data["endpoints"]["local"]["base_url"] = api.base_url
        setup.data["defaults"]["formats"] = ["txt", "srt"]
        setup.data["log"] = {"format": "json", "level": "info"}
        tones = [(0.5, 2.0, 500), (3.0, 4.5, 800)]
        tagged(write_tones(setup.inbox / "call.wav", tones, 5.0))
        process = DaemonProcess(setup, command="once")
        assert process.wait(timeout=60) == 0, process.raw[-5:]
    assert [u.reply for u in api.uploads] == ["200"]
    assert api.uploads[0].seconds == pytest.approx(5.0, abs=0.1)
    assert [hertz for _, _, hertz in api.uploads[0].tones] == [500, 800]
    assert "tone 500 tone 800" in (setup.inbox / "call.txt").read_text()
    assert process.named("file.done")

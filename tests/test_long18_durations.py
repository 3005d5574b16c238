"""long18: a header's negative length (a Matroska Duration below 0, an MP3 whose Xing
header counts one frame) never leaves the probe: it is no length, and the budget, the
price estimate and the audio.probed event get none below 0."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, write_tones
from dropscribe.audio import cut, probe
from test_attack14_budget import PRICE, estimates

if TYPE_CHECKING:
    from pathlib import Path

TONES = [(0.5, 2.5, 440)]


def matroska_lasting(path: Path, milliseconds: float) -> Path:
    """A 3-s Opus Matroska whose Segment's Duration (an 8-byte float) says ``milliseconds``."""
    write_tones(path, TONES, 3.0, rate=48000, container="matroska", codec="libopus")
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")
    data[at + 3 : at + 11] = struct.pack(">d", milliseconds)
    path.write_bytes(bytes(data))
    return path


def mp3_of_one_frame(path: Path) -> Path:
    """A 3-s MP3 whose Xing (``Info``) header counts 1 frame: FFmpeg takes away the
    encoder's delay and padding from that frame and gets a length below 0."""
    write_tones(path, TONES, 3.0, container="mp3", codec="libmp3lame")
    data = bytearray(path.read_bytes())
    at = data.find(b"Info")
    assert int.from_bytes(data[at + 4 : at + 8], "big") & 1  # the frame count is there
    data[at + 8 : at + 12] = (1).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("milliseconds", [-30e3, float("nan"), float("-inf"), float("inf")])
def test_a_matroska_duration_below_0_or_not_a_number_is_no_length(tmp_path, milliseconds):
    """A Matroska stating -30 s, NaN or an infinity: probed with no length (None), not
    said cut short, and its packets counted at the 3 s it holds."""
    path = matroska_lasting(tmp_path / "a.mkv", milliseconds)
    found = probe.examine(path)
    assert (found.duration, found.declared) == (None, None)
    assert cut.short(path, found) is None
    assert probe.counted(path) == pytest.approx(3.0, abs=0.1)


def test_an_mp3_whose_header_counts_one_frame_has_no_length_below_0(tmp_path):
    """An MP3 whose Xing header counts 1 frame: FFmpeg says -0.06 s; the probe says
    none (or 0 or more), never below 0."""
    found = probe.examine(mp3_of_one_frame(tmp_path / "a.mp3"))
    assert found.duration is None or found.duration >= 0


@pytest.mark.parametrize("name", ["minus.mkv", "one-frame.mp3"])
def test_a_negative_length_is_never_priced_below_0(setup, tmp_path, name):
    """A priced endpoint with a day budget, and a file whose header says a length below 0:
    transcribed, its estimate 0 or more (its packets counted), audio.probed with no
    negative seconds, no crash."""
    made = tmp_path / name
    made = matroska_lasting(made, -30e3) if name.endswith(".mkv") else mp3_of_one_frame(made)
    setup.data["endpoints"]["local"].update(price_per_hour=PRICE, budget={"per_day": 100.0})
    dropped = setup.inbox / name
    dropped.write_bytes(made.read_bytes())
    proc = DaemonProcess(setup, "once")
    assert proc.wait(60) == 0, proc
    assert dropped.with_suffix(".txt").exists(), proc
    (probed,) = proc.named("audio.probed")
    assert probed["seconds"] is None or probed["seconds"] >= 0, probed
    (estimate,) = estimates(setup.state)
    assert 0 <= estimate <= 4, proc
    assert not proc.named("file.failed"), proc
    assert not proc.named("job.crashed"), proc

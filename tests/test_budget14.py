"""A budget and a recording whose container gives no length (a live Matroska, a browser's
MediaRecorder webm): the length is counted from its packets, not guessed from its size,
through the real dropscribe process."""

from __future__ import annotations

import signal
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import DaemonProcess, make_wav, wait_for
from dropscribe.audio import probe
from test_attack14_budget import PRICE, estimates
from test_tracks32 import RATE

pytestmark = pytest.mark.slow


def live_flac(path: Path, seconds: float) -> Path:
    """``seconds`` of loud noise as FLAC (about 30 kB a second: seven times the size-based
    guess's rate) in a Matroska file written as a live stream, so it states no length."""
    noise = np.random.default_rng(7).integers(-20000, 20000, round(seconds * RATE))
    pcm = noise.astype(np.int16)
    with av.open(str(path), "w", format="matroska", options={"live": "1"}) as out:
        stream = out.add_stream("flac", rate=RATE)
        stream.layout = "mono"
        for first in range(0, len(pcm), RATE // 10):
            frame = av.AudioFrame.from_ndarray(
                pcm[None, first : first + RATE // 10].copy(), format="s16", layout="mono"
            )
            frame.sample_rate, frame.pts = RATE, first
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_a_file_without_a_stated_length_is_counted_not_guessed(setup, tmp_path):
    """A 2-s live mkv (no duration in its header) in a folder with a day budget of 10
    seconds' worth: estimated at its 2 s (counted from its packets) and transcribed, not
    failed as over the whole budget on a guess of 15 s from its size."""
    sample = live_flac(tmp_path / "sample.mkv", 2.0)
    assert probe.examine(sample).duration is None  # the premise: no length stated
    setup.data["endpoints"]["local"]["price_per_hour"] = PRICE
    setup.data["defaults"]["budget"] = {"per_day": 10.0}
    dropped = setup.inbox / "call.mkv"
    dropped.write_bytes(sample.read_bytes())
    proc = DaemonProcess(setup)
    try:
        wait_for(lambda: dropped.with_suffix(".txt").exists(), timeout=60, what="its transcript")
        assert not proc.named("file.failed")
        assert estimates(setup.state) == [pytest.approx(2.0, abs=0.05)]
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(30)


def test_counted_is_none_for_a_file_that_is_not_audio(tmp_path):
    """counted(): no length (None) for bytes no demuxer reads, never an exception."""
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(b"\x00" * 1000)
    assert probe.counted(junk) is None


@pytest.mark.parametrize("listed", [False, True])
def test_a_folder_over_its_budget_holds_no_worker(setup, listed):
    """One worker; a folder whose day budget takes one of its two 1-s files: the second
    waits where it is (file.waiting, unsent), and a file dropped into another folder
    afterwards is transcribed; alone or down a list of two endpoints."""
    dear, plain = setup.root / "dear", setup.root / "plain"
    dear.mkdir()
    plain.mkdir()
    local = setup.data["endpoints"]["local"]
    local["price_per_hour"] = PRICE
    if listed:
        setup.data["endpoints"]["other"] = {**local, "budget": {"per_day": 1.5}}
        setup.data["defaults"]["endpoint"] = ["local", "other"]
        local["budget"] = {"per_day": 1.5}
    setup.data["inboxes"] = [{"path": str(dear), "budget": {"per_day": 1.5}}, {"path": str(plain)}]
    setup.data["workers"] = 1
    first, second = (make_wav(dear / f"{n}.wav", 1.0, freq=f) for n, f in (("a", 440), ("b", 660)))
    proc = DaemonProcess(setup)
    try:
        proc.wait_event("file.waiting", timeout=60)
        honest = make_wav(plain / "short.wav", seconds=0.3)
        wait_for(lambda: honest.with_suffix(".txt").exists(), timeout=30, what="the next file")
        done = {e["path"] for e in proc.named("file.done")}
        (waiting,) = {e["path"] for e in proc.named("file.waiting")}
        assert {str(first), str(second)} - done == {waiting}
        assert Path(waiting).exists()
        assert not proc.named("file.failed")
        assert len(setup.api.uploads) == 2  # one of dear's, and the plain folder's
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(30)

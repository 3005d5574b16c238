"""hostile14b: the holes attack14 found but left, through the real dropscribe process: a
forged MKV duration, a server billing 1e7 s, a budget with no price, and a 429 asking
for an hour's pause must neither skew the speeds, nor eat a budget, nor hold a worker."""

from __future__ import annotations

import json
import signal
import sqlite3
import struct
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import pytest

from conftest import DaemonProcess, make_wav, wait_for
from fakeapi import FakeAPI, Reply, openai_error

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

PRICE = 3600.0  # one unit of money an audio second
COMMON = {"api_key_env": "DROPSCRIBE_TEST_KEY", "timeout": 10, "backoff_max": 0.2}
RATE = 16000


def forged_mkv(path: Path, seconds: float = 2.0, claimed: float = 1e6) -> Path:
    """A FLAC-in-Matroska tone of ``seconds`` whose Segment Info says ``claimed`` s."""
    samples = int(seconds * RATE)
    tone = (np.sin(2 * np.pi * 440 * np.arange(samples) / RATE) * 8000).astype(np.int16)
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("flac", rate=RATE)
        stream.layout = "mono"
        for at in range(0, samples, 1600):
            frame = av.AudioFrame.from_ndarray(
                tone[at : at + 1600].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate, frame.pts = RATE, at
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")  # Duration, an 8-byte float in milliseconds
    assert at > 0
    data[at + 3 : at + 11] = struct.pack(">d", claimed * 1000)
    path.write_bytes(bytes(data))
    return path


def spend_rows(state: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(state / "ledger.sqlite3") as db:
        return db.execute("SELECT state, estimate, cost, seconds FROM spend").fetchall()


def test_a_forged_mkv_duration_neither_estimates_nor_measures_a_million_seconds(setup):
    """A 2 s MKV whose header claims a million seconds, sent to a server that bills the
    2 s it decoded: it is estimated at no more than its bytes can hold, and the spend
    row the endpoint's speed is measured from (route: fastest) says 2 s, not 1e6."""
    setup.data["endpoints"]["local"]["price_per_hour"] = PRICE
    setup.api.answer = lambda upload: {"text": f"transcript of {upload.filename}", "duration": 2.0}
    forged = forged_mkv(setup.inbox / "forged.mkv")
    assert DaemonProcess(setup, command="once").wait(60) == 0
    assert forged.with_suffix(".txt").exists()
    [(state, estimate, cost, seconds)] = spend_rows(setup.state)
    assert state == "settled"
    assert estimate <= forged.stat().st_size / 125 + 1  # at most 1 kbit/s of it
    assert (cost, seconds) == (pytest.approx(2.0), pytest.approx(2.0))


@pytest.mark.parametrize(
    "billed", [{"duration": 1e7}, {"usage": {"type": "duration", "seconds": 1e7}}]
)
def test_a_bill_of_1e7_seconds_for_half_a_second_is_disputed_not_settled(setup, billed):
    """A server billing 1e7 s (its ``duration`` or ``usage.seconds``) for a 0.5 s file
    under a month budget: what is settled is at most twice the file plus a minute, the
    month's budget is not used up, and ``spend.disputed`` names both lengths."""
    setup.data["endpoints"]["local"].update(price_per_hour=PRICE, budget={"per_month": 1000.0})
    setup.api.script.append(Reply(200, {"text": "hello", **billed}))
    make_wav(setup.inbox / "call.wav", seconds=0.5)
    proc = DaemonProcess(setup, command="once")
    assert proc.wait(60) == 0
    [(state, _, cost, seconds)] = spend_rows(setup.state)
    assert state == "settled"
    assert cost == pytest.approx(61.0) == seconds
    [disputed] = proc.named("spend.disputed")
    assert disputed["level"] == "warning"
    assert disputed["billed_seconds"] == pytest.approx(1e7)
    assert disputed["expected_seconds"] == pytest.approx(0.5)
    assert disputed["settled_seconds"] == pytest.approx(61.0)


def test_a_budget_with_no_price_frees_the_only_worker_with_a_reason(setup):
    """One worker; a folder whose one endpoint has a budget but no price (a self-hosted
    server, no price_per_hour) and a plain folder: the first file waits with a reason
    naming price_per_hour (not failed, unsent), and the worker goes on to the next."""
    with FakeAPI(kind="vllm") as unpriced:
        dear, plain = setup.root / "dear", setup.root / "plain"
        dear.mkdir()
        plain.mkdir()
        setup.data["endpoints"]["unpriced"] = {
            "base_url": unpriced.base_url,
            "kind": "vllm",
            "budget": {"per_day": 5.0},
            **COMMON,
        }
        setup.data["inboxes"] = [
            {"path": str(dear), "endpoint": "unpriced", "model": "whisper-large-v3"},
            {"path": str(plain)},
        ]
        setup.data["workers"] = 1
        waiting = make_wav(dear / "waiting.wav", seconds=0.5)
        proc = DaemonProcess(setup)
        try:
            proc.wait_event("file.waiting", timeout=30)
            honest = make_wav(plain / "short.wav", seconds=0.3)
            wait_for(lambda: honest.with_suffix(".txt").exists(), timeout=30, what="next file")
            [said] = [e for e in proc.named("file.waiting") if e["path"] == str(waiting)]
            assert "price_per_hour" in said["reason"]
            assert not proc.named("file.failed")
            assert waiting.exists()
            assert not unpriced.uploads
        finally:
            proc.signal(signal.SIGTERM)
            proc.wait(30)


def test_an_hour_long_retry_after_pauses_its_endpoint_and_frees_the_worker(setup):
    """One worker, two folders on two endpoints: endpoint A answers 429 Retry-After:
    3600. A file for endpoint B dropped afterwards is done promptly; A's file is not
    failed, waits with a reason ``status`` shows, and A gets no second request."""
    with FakeAPI() as slow:
        first, second = setup.root / "a", setup.root / "b"
        first.mkdir()
        second.mkdir()
        setup.data["endpoints"]["a"] = {"base_url": slow.base_url, **COMMON}
        setup.data["inboxes"] = [
            {"path": str(first), "endpoint": "a"},
            {"path": str(second), "endpoint": "local"},
        ]
        setup.data["workers"] = 1
        slow.script.append(
            openai_error(
                429, "Rate limit reached", code="rate_limit_exceeded", **{"Retry-After": "3600"}
            )
        )
        held = make_wav(first / "held.wav", seconds=0.5)
        proc = DaemonProcess(setup)
        try:
            wait_for(lambda: slow.uploads, timeout=30, what="A's request")
            other = make_wav(second / "other.wav", seconds=0.5, freq=300)
            wait_for(lambda: other.with_suffix(".txt").exists(), timeout=30, what="B's file")
            wait_for(lambda: proc.named("file.waiting"), timeout=10, what="A's file waiting")
            [paused] = proc.named("endpoint.paused")
            assert (paused["endpoint"], paused["seconds"]) == ("a", 3600.0)
            [said] = proc.named("file.waiting")
            assert said["path"] == str(held)
            assert "Retry-After" in said["reason"]
            assert not proc.named("file.failed")
            assert held.exists()
            assert len(slow.uploads) == 1
            found = json.loads(setup.command("status", "--json").stdout)
            [shown] = [f for f in found["files"] if f["path"] == str(held)]
            assert shown["state"] == "waiting"
            assert "pause of 3600 s (429 Retry-After)" in shown["reason"]
            assert "api key" not in shown["action"]  # nothing of the user's to fix
            assert "rate limit" in shown["action"]
        finally:
            proc.signal(signal.SIGTERM)
            proc.wait(30)

"""attack14: budgets under attack through the real dropscribe process: a recording whose
header claims more audio than it holds (a streaming recorder's WAV, or a dropper's), and
a file that costs more than a whole budget, must not hold a worker for ever."""

from __future__ import annotations

import signal
import sqlite3
import struct
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, Setup, make_wav, wait_for, wav_bytes
from fakeapi import FakeAPI, Reply

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

PRICE = 3600.0  # one unit of money an audio second
COMMON = {"api_key_env": "DROPSCRIBE_TEST_KEY", "timeout": 10, "backoff_max": 0.2}


def lying_wav(path: Path, seconds: float = 0.5) -> Path:
    """A WAV whose data chunk says 0xFFFFFFF0 bytes (a streaming recorder's placeholder,
    or a dropper's lie) over ``seconds`` of real audio: 37 hours claimed at 16 kHz."""
    real = wav_bytes(seconds)
    head = bytearray(real[:44])
    assert head[36:40] == b"data"
    head[4:8] = struct.pack("<I", 0xFFFFFFFF)
    head[40:44] = struct.pack("<I", 0xFFFFFFF0)
    path.write_bytes(bytes(head) + real[44:])
    return path


def estimates(state: Path) -> list[float]:
    with sqlite3.connect(state / "ledger.sqlite3") as db:
        return [float(row[0]) for row in db.execute("SELECT estimate FROM spend")]


def test_a_wav_claiming_37_hours_is_estimated_at_what_it_holds(setup):
    """A day budget of 100 and a half-second WAV whose header claims 37 hours: it is
    estimated (and reserved) at its half second and transcribed, not held over budget."""
    setup.data["endpoints"]["local"].update(price_per_hour=PRICE, budget={"per_day": 100.0})
    lying = lying_wav(setup.inbox / "lying.wav")
    proc = DaemonProcess(setup)
    try:
        wait_for(lambda: lying.with_suffix(".txt").exists(), timeout=60, what="its transcript")
        assert not proc.named("budget.reached")
        assert estimates(setup.state) == [pytest.approx(0.5, abs=0.01)]
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(30)


def over_budget_and_plain(setup: Setup) -> tuple[Path, Path]:
    """One worker; inbox ``dear`` (day budget 0.5) with a 1 s file (1.00: more than its
    whole budget), and a plain inbox (no budget)."""
    dear, plain = setup.root / "dear", setup.root / "plain"
    dear.mkdir()
    plain.mkdir()
    setup.data["endpoints"]["local"]["price_per_hour"] = PRICE
    setup.data["inboxes"] = [
        {"path": str(dear), "budget": {"per_day": 0.5}},
        {"path": str(plain)},
    ]
    setup.data["workers"] = 1
    return make_wav(dear / "long.wav", seconds=1.0), plain


def test_a_file_over_a_whole_budget_fails_and_never_holds_the_only_worker(setup):
    """A file whose cost alone is more than its folder's whole day budget (no turn of
    the day lets it through) fails with a reason naming the budget, unsent, and the
    only worker goes on to the next file."""
    long, plain = over_budget_and_plain(setup)
    proc = DaemonProcess(setup)
    try:
        proc.wait_event("daemon.started", timeout=60)
        wait_for(lambda: proc.named("file.failed") or proc.named("budget.reached"), what="a try")
        honest = make_wav(plain / "short.wav", seconds=0.3)
        wait_for(lambda: honest.with_suffix(".txt").exists(), timeout=30, what="the next file")
        (failed,) = proc.named("file.failed")
        assert failed["path"] == str(long)
        assert "whole budget per_day 0.50" in failed["error"]
        assert [u.filename for u in setup.api.uploads] == ["short.wav"]
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(30)


def test_a_file_over_every_endpoints_whole_budget_fails_down_the_list(setup):
    """Two endpoints, each with a day budget smaller than the file's cost: the file is
    passed over by both and fails (unsent), where it used to wait for ever."""
    with FakeAPI() as first, FakeAPI() as second:
        setup.data["endpoints"] = {
            name: {
                "base_url": api.base_url,
                "price_per_hour": PRICE,
                "budget": {"per_day": 0.5},
                **COMMON,
            }
            for name, api in (("first", first), ("second", second))
        }
        setup.data["defaults"].update(endpoint=["first", "second"], model="whisper-1")
        setup.data["workers"] = 1
        long = make_wav(setup.inbox / "long.wav", seconds=1.0)
        proc = DaemonProcess(setup)
        try:
            proc.wait_event("file.failed", timeout=30)
            (failed,) = proc.named("file.failed")
            assert failed["path"] == str(long)
            assert "whole budget per_day 0.50" in failed["error"]
            assert not first.uploads
            assert not second.uploads
        finally:
            proc.signal(signal.SIGTERM)
            proc.wait(30)


@pytest.mark.parametrize(
    "billed", [{"duration": -3600}, {"usage": {"type": "duration", "seconds": -1e6}}]
)
def test_a_negative_billed_length_settles_at_the_estimate_not_at_nothing(setup, billed):
    """An answer that says it billed a negative length (its ``duration``, or
    gpt-transcribe's ``usage.seconds``): the spend is settled at the estimate (the
    recording's half second), never at 0 as if nothing was billed."""
    setup.data["endpoints"]["local"]["price_per_hour"] = PRICE
    setup.api.script.append(Reply(200, {"text": "hello", **billed}))
    make_wav(setup.inbox / "call.wav", seconds=0.5)
    assert DaemonProcess(setup, command="once").wait(60) == 0
    with sqlite3.connect(setup.state / "ledger.sqlite3") as db:
        rows = db.execute("SELECT state, cost FROM spend").fetchall()
    assert rows == [("settled", pytest.approx(0.5, abs=0.01))]

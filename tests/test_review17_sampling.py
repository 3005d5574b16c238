"""review17, through the real ``dropscribe`` process: faster-whisper's own path (``vad:
false``) samples on a seeded replica (seed17), under the one-replica-at-a-time lock
(``redo._SAMPLING``). The lock was held from a file's first sampled window to the end
of its recording, so a short file beside a long one (``max_concurrency: 2``) waited for
the whole of the long one before its own first window could sample. It is now held a
window at a time."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from conftest import DaemonProcess
from test_local37 import talk
from test_seed16 import OTHER, SAID


@pytest.fixture
def two_at_once(setup: Any) -> Any:
    """A local endpoint on faster-whisper's own path taking two files at once, each
    window sampled (``temperature: 0.2``: every decode draws from a replica)."""
    setup.data["endpoints"] = {"here": {"kind": "local", "vad": False, "max_concurrency": 2}}
    setup.data["workers"] = 2
    setup.data["defaults"] = {
        "endpoint": "here",
        "model": "tiny.en",
        "settle_seconds": 0.2,
        "temperature": 0.2,
        "formats": ["txt"],
    }
    setup.data["log"] = {"format": "json", "level": "debug"}
    return setup


@pytest.mark.slow
def test_a_short_file_beside_a_long_one_is_not_held_for_the_whole_long_one(two_at_once):
    """A few seconds of talk done first (the model then confirmed: files go two at once);
    three minutes of talk start decoding (their first replica loaded: the lock taken);
    then a few seconds more arrive: they are done before the long file, not after it."""
    setup = two_at_once
    staged = setup.root / "staged"
    first = talk(setup.inbox / "first.wav", [SAID], speed=160, pause=0.3)
    long = talk(staged / "long.wav", [SAID, OTHER] * 20, speed=160, pause=0.3)
    short = talk(staged / "short.wav", [OTHER], speed=160, pause=0.3)
    proc = DaemonProcess(setup)
    try:
        proc.wait_event("file.done", timeout=120)
        long = long.rename(setup.inbox / long.name)
        proc.wait_event("replica.loaded", count=2, timeout=120)  # the long file's first window
        short = short.rename(setup.inbox / short.name)
        proc.wait_event("file.done", count=3, timeout=300)
        done = [e["path"] for e in proc.named("file.done")]
    finally:
        proc.signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    assert done == [str(first), str(short), str(long)]

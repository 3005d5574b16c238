"""attack22: a daemon whose stderr's reader went away (``dropscribe run 2>&1 | head``, a
``tee`` killed, a terminal's pipe closed) goes on with its work: its events are lost, not
its recordings. Before, the next event's write raised BrokenPipeError in the main loop, and
the daemon ended in ``daemon.crashed`` with exit 1 (ci21's relay already survives a stderr
gone; the rest of the daemon did not: `ops/log.py` now drops what it cannot write)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from conftest import make_wav, patience, wait_for
from dropscribe.ops.log import _Lossy

if TYPE_CHECKING:
    from conftest import Setup

pytestmark = pytest.mark.slow


def test_a_daemon_whose_stderr_reader_went_away_goes_on(setup: Setup) -> None:
    """stderr's reader closed once the daemon started: a recording dropped later is still
    transcribed, and a SIGTERM still ends the daemon with exit 0."""
    setup.write()
    read, write = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dropscribe", "run", "-c", str(setup.config_path)],
        stdout=subprocess.DEVNULL,
        stderr=write,
        env={**os.environ, **setup.env},
    )
    os.close(write)
    try:
        with os.fdopen(read, "rb") as events:
            while b'"daemon.started"' not in events.readline():
                assert proc.poll() is None, "the daemon ended before it started"
        make_wav(setup.inbox / "a.wav", seconds=1.0)
        wait_for(
            lambda: (setup.inbox / "a.txt").exists() or proc.poll() is not None,
            30,
            "the transcript or the daemon's end",
        )
        assert proc.poll() is None, f"the daemon ended with exit {proc.returncode}"
        assert (setup.inbox / "a.txt").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(patience(30)) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_an_event_the_streams_encoding_cannot_take_is_lost_alone() -> None:
    """review22: a stream of strict ASCII refuses one event's text; that event is lost, and
    the next one is still written (a UnicodeError is a ValueError: it silenced them all)."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", errors="strict", write_through=True)
    lossy = _Lossy(stream)
    lossy.write("caf\u00e9\n")
    lossy.write("plain\n")
    lossy.flush()
    assert raw.getvalue() == b"plain\n"

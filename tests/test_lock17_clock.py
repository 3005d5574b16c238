"""lock17: the wall clock set back an hour (NTP stepping a clock that was fast, a VM
restored from a snapshot) while the daemon runs: the stepper's full passes over the done
files keep their pace (``rescan_seconds``) instead of stopping for that hour. The real
``dropscribe`` process runs under libfaketime (its wall clock moved by a file the test
writes, its monotonic clock left alone; ``test_attack17_clock.faketime``), with the fake
API and a chat server on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest

from conftest import DaemonProcess, make_wav, patience, wait_for
from test_attack13_chat import KEY, configure, hostile
from test_attack17_clock import faketime

pytestmark = pytest.mark.slow

__all__ = ["hostile"]  # the fixture, used by name

PLAIN = "---\ntitle: a\n---\ntranscript of a.wav\n"  # a note without the summary's sections


def once(setup: Any) -> None:
    """``dropscribe once`` as a user runs it: the inbox transcribed and summarised."""
    done = subprocess.run(
        [sys.executable, "-m", "dropscribe", "once", "-c", str(setup.write())],
        capture_output=True,
        text=True,
        env={**os.environ, **setup.env, "LLM_KEY": KEY},
        timeout=patience(60),
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_lost_summary_is_written_again_at_the_next_full_pass_after_the_clock_went_back(
    setup: Any, hostile: Any
) -> None:
    """An old done file's md note written again without its summary, after the wall
    clock went back an hour: the next full pass (rescan_seconds: 2) puts the summary
    back within seconds, not an hour later. (Only a full pass looks at a file done
    before the latest one: b.wav is done over a second after a.wav.)"""
    configure(setup, hostile)
    setup.data["defaults"]["formats"] = ["md"]
    setup.data["rescan_seconds"] = 2
    make_wav(setup.inbox / "a.wav")
    once(setup)
    a_done = time.time()
    wait_for(lambda: time.time() > a_done + 1.5, 5, "a second and more to pass")
    make_wav(setup.inbox / "b.wav", freq=880.0)  # other content: a transcript of its own
    once(setup)
    note = setup.inbox / "a.md"
    summarised = note.read_text()
    assert summarised != PLAIN
    note.write_text(PLAIN)
    env, offset = faketime(setup.root)
    daemon = DaemonProcess(setup, env={"LLM_KEY": KEY, **env})
    try:
        daemon.wait_event("step.written")  # the first full pass, at the start
        assert note.read_text() == summarised
        offset.write_text("-3600\n")
        note.write_text(PLAIN)
        daemon.wait_event("step.written", count=2, timeout=10)
    finally:
        daemon.kill()
    assert note.read_text() == summarised
    assert len(hostile.headers_seen) == 2  # one summary of each file, stored, never asked again

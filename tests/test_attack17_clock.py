"""attack17: the wall clock set back an hour while a step waits out its Retry-After (NTP
stepping a clock that was fast, a VM restored from a snapshot). The wait is the server's
few seconds, not an hour more. The real ``dropscribe`` process runs under libfaketime
(its wall clock moved by a file the test writes; its monotonic clock left alone), with
the fake API and a chat server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import libfaketime
import pytest

from conftest import DaemonProcess, make_wav
from test_attack13_chat import KEY, RATE, configure, hostile, raw

pytestmark = pytest.mark.slow

__all__ = ["hostile"]  # the fixture, used by name


def faketime(folder: Path) -> tuple[dict[str, str], Path]:
    """The environment that runs a process under libfaketime, and the file whose offset
    (seconds, "+0" or "-3600") its wall clock follows from then on."""
    found = sorted(Path(libfaketime.__file__).parent.rglob("libfaketime.so.1"))
    if not found:
        pytest.fail("the libfaketime wheel holds no libfaketime.so.1 for this machine")
    offset = folder / "faketime"
    offset.write_text("+0\n")
    env = {
        "LD_PRELOAD": str(found[0]),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",  # the file read again at every call: a jump is at once
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # a real jump moves the wall clock only
        "NO_FAKE_STAT": "1",
    }
    return env, offset


def test_a_step_waiting_out_a_retry_after_is_not_held_an_hour_by_a_clock_set_back(
    setup: Any, hostile: Any
) -> None:
    """A summary answered 429 with Retry-After: 2 is retried within seconds after the
    wall clock goes back an hour meanwhile, not an hour and 2 s later."""
    configure(setup, hostile, max_attempts=3)
    setup.data["rescan_seconds"] = 3600
    hostile.modes.append(raw(429, json.dumps(RATE), Retry_After="2"))
    env, offset = faketime(setup.root)
    daemon = DaemonProcess(setup, env={"LLM_KEY": KEY, **env})
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav")
        daemon.wait_event("step.failed")
        offset.write_text("-3600\n")
        daemon.wait_event("step.written", timeout=20)
    finally:
        daemon.kill()
    assert (setup.inbox / "a.summary.md").is_file()

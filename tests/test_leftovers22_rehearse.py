"""leftovers22: ``dropscribe rehearse`` asked the endpoint without the audio's length, so
an answer was read up to ``max_answer_bytes`` (64 MiB) whatever the recording: 16 MB for
a one-second file was taken whole. It probes the file as the daemon does now, and holds
each answer to what any answer for that much audio could be (answers21: 32 KiB a second,
1 MiB at least). The real command, over a socket to the fake server that counts what its
socket took."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, make_wav, wait_for
from fakeapi import Reply
from test_answers21_bytes import HOSTILE, Counted, counted
from test_rehearse import rehearse

if TYPE_CHECKING:
    from conftest import Setup

__all__ = ["counted"]  # the fixture, from answers21's tests

pytestmark = pytest.mark.slow


def test_rehearse_refuses_megabytes_for_a_one_second_file_unread(counted: Setup) -> None:
    """A finished 1-s recording rehearsed, answered with 16 MB of valid JSON: its table
    line names the endpoint, the 1 s and the 1 MiB cap; exit 1, no .next sidecar, no
    traceback; the server's socket took less than half of the answer."""
    setup = counted
    api: Counted = setup.api  # type: ignore[assignment]
    make_wav(setup.inbox / "a.wav", seconds=1.0)
    assert DaemonProcess(setup, command="once").wait(timeout=60) == 0
    assert (setup.inbox / "a.txt").exists()
    api.script.append(Reply(200, raw=HOSTILE))
    shown = rehearse(setup, "--inbox", str(setup.inbox), "--model", "gpt-transcribe")
    assert shown.returncode == 1, shown
    assert "Traceback" not in shown.stderr, shown.stderr
    (line,) = [x for x in shown.stdout.splitlines() if x.startswith("a.wav")]
    assert f"failed: answer from endpoint 'local' ({api.base_url}) is {len(HOSTILE):,}" in line
    assert "bytes for 1 s of audio, over the 1,048,576 any answer for it could be" in line
    assert not list(setup.inbox.glob("a.next.*"))
    wait_for(api.refused.is_set, what="the server's write refused")
    assert api.taken < len(HOSTILE) / 2, f"{api.taken:,} bytes taken by the socket"

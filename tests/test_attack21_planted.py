"""attack21: JSON that anyone who may write in a shared inbox can plant, nested past what
Python's parser takes (RecursionError, no ValueError): a quarantined recording's
``NAME.error.json`` made ``status``, ``explain`` and ``retry`` end in a traceback, and
a sidecar's hidden mark file (``.NAME.dropscribe-mark``, read when the daemon looks
for its own sidecars from before a lost ledger) crashed the job of a recording dropped
later under that name. Each is now a report or a mark that says nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from conftest import DaemonProcess, make_wav, patience
from dropscribe.outputs import disposition, marks

pytestmark = pytest.mark.slow

DEEP = b"[" * 2048 + b"]" * 2048  # 4 KiB: as much as a mark file is read of


def command(setup: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dropscribe", *args, "-c", str(setup.write())],
        capture_output=True,
        text=True,
        env={**os.environ, **setup.env},
        timeout=patience(60),
        check=False,
    )


def test_a_deep_error_report_is_a_report_that_says_nothing(setup: Any) -> None:
    """A quarantined x.wav with a report nested 2,048 deep beside it: status, explain and
    retry each exit 0 without a traceback, as for a recording with no report."""
    failed = setup.inbox / "failed"
    failed.mkdir()
    (failed / "x.wav").write_bytes(b"not audio")
    disposition.error_report(failed / "x.wav").write_bytes(DEEP)
    for args in (
        ("status", "--json"),
        ("explain", str(setup.inbox / "x.wav")),
        ("retry", str(setup.inbox / "x.wav")),
    ):
        done = command(setup, *args)
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    assert (setup.inbox / "x.wav").exists()  # retry put it back


def test_a_deep_mark_planted_beside_a_strangers_sidecar_does_not_crash_the_job(
    setup: Any,
) -> None:
    """Another user's a.txt at the name a.wav's transcript would take, with a hidden mark
    file nested deep: a.wav is done (its transcript under another name), no job crashes,
    and the planted file is left as it was."""
    planted = setup.inbox / "a.txt"
    planted.write_text("someone else's notes\n")
    marks.fallback(planted).write_bytes(DEEP)
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav")
        daemon.wait_output(
            lambda: bool(daemon.named("file.done") or daemon.named("job.crashed")),
            60,
            "a.wav's end",
        )
    finally:
        daemon.kill()
    assert not daemon.named("job.crashed"), daemon
    [done] = daemon.named("file.done")
    assert str(planted) not in done["outputs"], done
    assert planted.read_text() == "someone else's notes\n"

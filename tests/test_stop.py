"""A stop that outlasts shutdown_grace ends the process with its exit code, never a signal."""

from __future__ import annotations

import os
import signal

import pytest

from conftest import LONG_SPEECH, DaemonProcess
from test_local import local, speak  # noqa: F401 - the fixture, used by name

pytestmark = pytest.mark.slow


def test_a_stop_past_the_grace_during_a_local_transcription_exits_0(local):  # noqa: F811
    """SIGTERM with a grace of 0 s while faster-whisper is mid-recording: daemon.abandoned,
    then exit 0 (not SIGSEGV or SIGABRT from tearing the interpreter down under the
    engine's thread), no sidecar, and the file is transcribed at the next start."""
    local.data["shutdown_grace"] = 0
    local.data["log"] = {"level": "debug"}  # local.transcribe: the engine has begun
    # long enough that the engine (two batches at once) is still at it when the stop lands
    speak(local.inbox / "long.wav", " ".join([LONG_SPEECH] * 4))
    # The interpreter's teardown (where the crash happened, 1 stop in 6) runs atexit
    # handlers; a process that leaves without tearing down runs none.
    inject = local.root / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(
        "import atexit, sys\n"
        'atexit.register(lambda: sys.stderr.write(\'{"event": "test.teardown"}\\n\'))\n'
    )
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(inject), os.environ.get("PYTHONPATH")]))}
    daemon = DaemonProcess(local, env=env)
    try:
        daemon.wait_event("local.transcribe", timeout=60)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    finally:
        daemon.kill()
    assert daemon.named("daemon.abandoned")
    assert daemon.named("daemon.stopped")
    assert not daemon.named("test.teardown")
    assert not (local.inbox / "long.txt").exists()
    again = DaemonProcess(local, command="once")
    assert again.wait(timeout=120) == 0
    assert "recording" in (local.inbox / "long.txt").read_text().lower()

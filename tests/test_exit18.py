"""The daemon's exit: no thread of ours is left running under the interpreter's teardown
(CPython 3.13 crashed with SIGSEGV there in CI when the radar's thread was still ending)."""

from __future__ import annotations

import contextlib
import shutil
import signal
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, make_wav, patience, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow


def test_a_stop_waits_for_the_radar_thread_that_is_in_its_daily_wait(setup):
    """After a stop the radar's thread has ended before the process exits: no thread left."""
    setup.data["log"] = {"level": "debug"}
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "one.wav")
        daemon.wait_event("file.done")
        # the radar looks on a thread of its own, started with the daemon: on a busy
        # machine after the file is done (flakes19: 0 looks seen here, once in 7 runs)
        wait_for(lambda: setup.api.listings, what="the radar's look answered")
        assert setup.api.listings == 1  # the radar has looked, and waits a day
        daemon.signal(signal.SIGINT)
        assert daemon.wait() == 0
    finally:
        daemon.kill()
    assert not daemon.named("daemon.threads_left"), daemon


@contextlib.contextmanager
def radar_hung(setup) -> Iterator[DaemonProcess]:
    """A daemon (debug log) whose GET /models was asked and never answers, until the block
    ends; then killed if it still runs."""
    setup.data["log"] = {"level": "debug"}
    setup.api.listing_gate.clear()
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        with setup.api.arrived:
            assert setup.api.arrived.wait_for(lambda: setup.api.asked >= 1, patience(20))
        yield daemon
    finally:
        setup.api.listing_gate.set()
        daemon.kill()


def test_a_radar_look_hung_at_stop_ends_with_the_process_not_under_its_teardown(setup):
    """GET /models never answers: SIGTERM still exits 0 at once, leaving the interpreter
    by os._exit with the thread named (a teardown under it can crash)."""
    with radar_hung(setup) as daemon:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0, daemon
    (left,) = daemon.named("daemon.threads_left")
    assert "dropscribe-radar" in left["threads"]
    assert daemon.named("daemon.stopped")


def test_a_daemon_failing_beside_a_hung_radar_look_exits_1_by_os_exit(setup):
    """state_dir removed while GET /models hangs: the daemon fails (exit 1, daemon.failed)
    by os._exit with the radar's thread named, as a stop does, not in a teardown under it."""
    with radar_hung(setup) as daemon:
        shutil.rmtree(setup.state)
        assert daemon.wait(timeout=20) == 1, daemon
    (failed,) = daemon.named("daemon.failed")
    assert failed["error"].startswith(f"state_dir {setup.state} was deleted")
    (left,) = daemon.named("daemon.threads_left")
    assert "dropscribe-radar" in left["threads"]

"""pgstop19 on SQLite: a stop while the main loop itself waits for a ledger another
process holds (its write turn, for the rescan's sweep of an ``after:`` whose recording
is gone) ends within shutdown_grace (plus ``STOP_MARGIN``), not after the turn's 30 s:
the stop gives the ledger up from the moment it is asked. Nothing of the sweep is
written; the next start sweeps. Through the real ``dropscribe`` process."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from conftest import DaemonProcess, make_wav, wait_for
from dropscribe.ledger.store import SqliteLedger
from test_grace18_stop import stopping, terminated, within_grace
from test_lock17_held import held_by, holding

pytestmark = pytest.mark.slow


def waited_for(lock: Path) -> bool:
    """Whether a process waits for the flock of ``lock`` (a ``->`` line of /proc/locks)."""
    inode = f":{os.stat(lock).st_ino} "
    lines = Path("/proc/locks").read_text().splitlines()
    return any("-> FLOCK" in line and inode in line for line in lines)


def pending(setup: Any) -> list[str]:
    """The paths of the ledger's pending after:s."""
    ledger = SqliteLedger(setup.state / "ledger.sqlite3")
    try:
        return [row.path for row in ledger.afters_pending(10)]
    finally:
        ledger.close()


def test_a_stop_while_the_main_loop_waits_for_the_write_turn_ends_within_the_grace(
    setup: Any,
) -> None:
    """SIGTERM while the rescan's sweep (the main loop's write) waits for the write turn
    another process holds: exit 0 within shutdown_grace + STOP_MARGIN, no crash, the
    row kept; once the holder lets go, the next start drops it."""
    stopping(setup, 1)
    setup.data["rescan_seconds"] = 1
    setup.api.listing_gate.clear()  # the radar's look hangs: it writes nothing meanwhile
    old = setup.root / "old"
    recording = make_wav(old / "a.wav", seconds=0.1)  # its inbox no longer in the config
    ledger = SqliteLedger(setup.state / "ledger.sqlite3")
    try:
        ledger.after_failed(recording, "old", "move", "Permission denied")
    finally:
        ledger.close()
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("file.after_unreached")
        lock, script, _ = held_by(setup, "write turn")
        with holding(lock, script):
            recording.unlink()
            wait_for(lambda: waited_for(lock), timeout=30, what="the sweep waiting for the turn")
            code, took = terminated(daemon)
    finally:
        setup.api.listing_gate.set()
        daemon.kill()
    within_grace(daemon, code, took)
    assert not daemon.named("daemon.crashed")
    assert not daemon.named("file.after_dropped")
    (failed,) = daemon.named("ledger.write_failed")  # the sweep's, given up
    assert "given up: the daemon is stopping" in failed["error"], failed
    assert pending(setup) == [str(recording)]  # nothing of the sweep written
    again = DaemonProcess(setup)
    try:
        again.wait_event("file.after_dropped", timeout=30)
        again.signal(signal.SIGTERM)
        assert again.wait() == 0, again
    finally:
        again.kill()
    assert pending(setup) == []

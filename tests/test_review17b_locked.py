"""review17b: SQLite's own "database is locked" (another process holding a write
transaction, as a ``sqlite3`` shell left in ``BEGIN IMMEDIATE`` holds it, past the 30-s
busy timeout) is waited for as the write turn is (lock17): the daemon's file waits, said,
nothing counted against it, no ``job.crashed``; once the holder lets go the file is done,
uploaded once. Through the real ``dropscribe`` process and fake API, with a holder
process made here."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import DaemonProcess, make_wav
from test_attack17_locked import HOLDERS
from test_lock17_held import holding

pytestmark = pytest.mark.slow

WAIT = 30.0  # SQLite's busy timeout for a locked database


def test_the_daemon_held_by_a_write_transaction_lets_the_file_wait_and_goes_on(
    setup: Any,
) -> None:
    """A recording arriving while another process holds a write transaction: after the
    30 s busy wait the file waits, the reason saying the database is locked, nothing
    counted against it (no job.crashed, no attempt); once the holder lets go it is done,
    uploaded once."""
    setup.data["rescan_seconds"] = 1
    setup.data["workers"] = 1
    path = setup.inbox / "a.wav"
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        database = setup.state / "ledger.sqlite3"
        with holding(database, HOLDERS["write transaction"]) as holder:
            make_wav(path)
            daemon.wait_event("file.waiting", timeout=WAIT + 10)  # the 30 s wait, and more
        (waiting, *_) = daemon.named("file.waiting")
        assert waiting["path"] == str(path)
        assert waiting["reason"] == (
            f"cannot write the ledger: {database} is in a write transaction of process"
            f" {holder.pid} (database is locked; waited 30 s for it)"
        )
        assert waiting["quarantined"] is False
        daemon.wait_event("file.done", timeout=30)
    finally:
        daemon.kill()
    assert path.with_suffix(".txt").read_text() == "transcript of a.wav\n"
    assert len(setup.api.uploads) == 1
    assert not daemon.named("job.crashed")
    assert not (setup.inbox / "failed").exists()

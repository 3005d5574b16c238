"""review17b: SQLite's own "database is locked" (another process holding a write
transaction, as a ``sqlite3`` shell left in ``BEGIN IMMEDIATE`` holds it, past the 30-s
busy timeout) is waited for as the write turn is (lock17): the daemon's file waits, said,
nothing counted against it, no ``job.crashed``; once the holder lets go the file is done,
uploaded once. Through the real ``dropscribe`` process and fake API, with a holder
process made here."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, make_wav, patience
from dropscribe.ledger import locked
from test_attack17_locked import HOLDERS
from test_lock17_held import holding

if TYPE_CHECKING:
    from pathlib import Path

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


def test_retry_held_by_a_write_transaction_ends_with_exit_1_naming_the_holder(
    setup: Any,
) -> None:
    """retry, another process holding a write transaction on the ledger, ends after the
    30 s busy wait with exit 1 naming the database and the holder's pid; nothing moved."""
    planted = make_wav(setup.inbox / "failed" / "x.wav")
    report = {"reason": "planted", "source": str(setup.inbox / "x.wav"), "key": None}
    (planted.parent / "x.wav.error.json").write_text(json.dumps(report))
    assert setup.command("once").returncode == 0  # the ledger made
    database = setup.state / "ledger.sqlite3"
    with holding(database, HOLDERS["write transaction"]) as holder:
        done = subprocess.run(
            [sys.executable, "-m", "dropscribe", "retry", "--all", "-c", str(setup.write())],
            capture_output=True,
            text=True,
            env={**os.environ, **setup.env},
            timeout=WAIT + patience(10),
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert f"{database} is in a write transaction of process {holder.pid}" in done.stderr
    assert planted.exists()
    assert not (setup.inbox / "x.wav").exists()


def test_busy_and_writer_name_sqlites_own_lock_and_its_holder(tmp_path: Path) -> None:
    """locked.busy tells SQLite's "database is locked" (and the ledger's error made of it)
    from other errors; locked.writer names the process holding the WAL write lock."""
    database = tmp_path / "ledger.sqlite3"
    db = sqlite3.connect(database, isolation_level=None, timeout=0)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE files (error TEXT)")
    with holding(database, HOLDERS["write transaction"]) as holder:
        assert locked.writer(database) == holder.pid
        with pytest.raises(sqlite3.OperationalError) as caught:
            db.execute("BEGIN IMMEDIATE")
        assert locked.busy(caught.value)
        assert locked.busy(locked.unavailable(caught.value, database).__cause__ or caught.value)
    assert locked.writer(database) is None
    assert not locked.busy(sqlite3.OperationalError("database is locked"))  # not SQLite's
    with pytest.raises(sqlite3.OperationalError) as other:
        db.execute("SELECT * FROM nowhere")
    assert not locked.busy(other.value)
    db.close()

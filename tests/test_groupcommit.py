"""The ledger's group commit: many writes share one transaction, yet fail alone."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import named, wait_for
from dropscribe.ledger.groupcommit import GroupCommit

SCHEMA = "CREATE TABLE IF NOT EXISTS t (x INTEGER UNIQUE);"


@pytest.fixture
def db(tmp_path):
    group = GroupCommit(tmp_path / "t.sqlite3", SCHEMA, "test-writer")
    yield group
    group.close()


def insert(x: int):
    return lambda conn: conn.execute("INSERT INTO t VALUES (?)", (x,)).rowcount


def test_write_returns_the_value_once_committed(db, tmp_path):
    """write() returns what its function returned, and the row is on disk by then."""
    assert db.write(insert(1)) == 1
    other = sqlite3.connect(tmp_path / "t.sqlite3")
    assert other.execute("SELECT x FROM t").fetchall() == [(1,)]
    other.close()


def test_a_failing_write_raises_to_its_caller_and_the_ledger_goes_on(db):
    """A waited-for write that fails raises its error; later writes still commit."""
    db.write(insert(1))
    with pytest.raises(sqlite3.IntegrityError):
        db.write(insert(1))
    db.write(insert(2))
    assert db.read("SELECT x FROM t ORDER BY x") == [(1,), (2,)]


def test_a_failing_posted_write_fails_alone_in_its_group_and_is_logged(db, events):
    """Posted writes queued together share one transaction; the one that fails is rolled
    back alone (its neighbours commit) and, with nobody waiting, logged."""
    running, gate = threading.Event(), threading.Event()

    def hold(conn):
        running.set()
        gate.wait(10)

    db.post(hold)
    assert running.wait(10)  # the writer is busy: the next posts queue up as one group
    db.post(insert(1))
    db.post(insert(1))  # a duplicate: fails
    db.post(insert(2))
    gate.set()
    assert db.read("SELECT x FROM t ORDER BY x") in ([], [(1,), (2,)])  # not half a group
    db.write(lambda conn: None)  # after everything queued before it
    assert db.read("SELECT x FROM t ORDER BY x") == [(1,), (2,)]
    (failed,) = named(events, "ledger.write_failed")
    assert "UNIQUE" in failed["error"]


def test_a_write_raising_any_error_fails_alone_and_the_writer_goes_on(db):
    """A write whose function raises something other than an SQLite error (a stat that
    is refused, say) raises to its caller; the writer thread survives for the next."""
    outcome: list[BaseException] = []

    def refused(conn):
        conn.execute("INSERT INTO t VALUES (7)")
        raise PermissionError(13, "Permission denied")

    def call() -> None:
        try:
            db.write(refused)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "write() never returned: the writer thread died"
    assert isinstance(outcome[0], PermissionError)
    done = threading.Thread(target=db.write, args=(insert(8),), daemon=True)
    done.start()
    done.join(10)
    assert not done.is_alive()
    assert db.read("SELECT x FROM t ORDER BY x") == [(8,)]  # 7 was rolled back with its write


def _waiters_on(path) -> int:
    """How many flock requests on ``path`` are blocked, according to /proc/locks."""
    inode = f":{path.stat().st_ino} "
    locks = Path("/proc/locks").read_text().splitlines()
    return sum("-> FLOCK" in line and inode in line for line in locks)


def test_a_commit_waits_its_turn_behind_another_process(db, tmp_path):
    """A write waits, blocked in the kernel, while another process holds the writer
    lock (instead of SQLite's sleep-and-retry), and commits as soon as it is let go."""
    turn = tmp_path / "t.sqlite3.lock"
    script = (
        "import fcntl, os, sys\n"
        f"fd = os.open({str(turn)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        writing = threading.Thread(target=db.write, args=(insert(1),))
        writing.start()
        wait_for(lambda: _waiters_on(turn) == 1, what="the writer blocked on the lock")
        assert writing.is_alive()
        other = sqlite3.connect(tmp_path / "t.sqlite3")
        assert other.execute("SELECT x FROM t").fetchall() == []
        holder.communicate()  # the other process reads EOF and exits: its lock goes
        writing.join(15)
        assert not writing.is_alive()
        assert other.execute("SELECT x FROM t").fetchall() == [(1,)]
        other.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate()

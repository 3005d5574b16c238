"""grace18: a stop ends within shutdown_grace (plus ``STOP_MARGIN``) whatever holds the
ledger: a write waiting for its write turn or its database held by another process is
given up when the grace is over, nothing of it written, and the files run again at the
next start, exactly once. And the ledger's two waits (the turn, then the database) are
one wait of 30 s, counted from the same start. Through the real ``dropscribe`` process,
with holder processes made as test_lock17_held.py makes them."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, make_wav, patience
from dropscribe.ledger import locked
from dropscribe.ledger.groupcommit import GroupCommit
from dropscribe.vocab.config import STOP_MARGIN
from test_lock17_held import HOLDER, TRANSACTION, held_by, holding

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

GRACE = 2.0  # shutdown_grace: far below the ledger's 30-s wait


def stopping(setup: Any, processes: int) -> list[Path]:
    """``setup`` at ``GRACE``, with as many workers as processes (one job each waits for
    the ledger): the recordings to drop, one more than the jobs (one is queued)."""
    setup.data["shutdown_grace"] = GRACE
    setup.data["workers"] = processes
    setup.data["processes"] = processes
    return [setup.inbox / f"{name}.wav" for name in "abc"[: processes + 1]]


def done_once_again(setup: Any, paths: list[Path]) -> None:
    """``once`` after the stop: each recording done once, uploaded once."""
    again = DaemonProcess(setup, command="once")
    assert again.wait(timeout=60) == 0, again
    for n, path in enumerate(paths):
        assert path.with_suffix(".txt").read_text() == f"transcript of {path.name}\n", n
    done = sorted(event["path"] for event in again.named("file.done"))
    assert done == sorted(str(path) for path in paths)
    assert len(setup.api.uploads) == len(paths)


def terminated(daemon: DaemonProcess, timeout: float = 60) -> tuple[int, float]:
    """SIGTERM to ``daemon``: its exit code, and how long the stop took."""
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    code = daemon.wait(timeout=timeout)
    return code, time.monotonic() - started


def within_grace(daemon: DaemonProcess, code: int, took: float) -> None:
    """The stop ended well (exit 0, daemon.stopped) in the grace and its margin; at least
    half the grace (its writes give up a moment before it ends)."""
    assert code == 0, daemon
    print(f"stop took {took:.2f} s")
    assert GRACE / 2 <= took <= patience(GRACE + STOP_MARGIN), took
    assert daemon.named("daemon.stopped")


@pytest.mark.parametrize(
    ("kind", "processes"),
    [("write transaction", 1), ("write turn", 1), ("write transaction", 2)],
)
def test_a_stop_with_the_ledger_held_elsewhere_ends_within_the_grace_and_the_files_run_again(
    setup: Any, kind: str, processes: int
) -> None:
    """SIGTERM while a job (in the daemon, or a worker process) waits for a ledger another
    process holds (its write turn, or a write transaction): exit 0 within shutdown_grace
    + STOP_MARGIN (not the 30-s wait), nothing sent, no worker killed; once the holder
    lets go, a restart does each file once, uploaded once."""
    paths = stopping(setup, processes)
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        lock, script, _ = held_by(setup, kind)
        with holding(lock, script):
            for n, path in enumerate(paths):
                make_wav(path, freq=300 + 100 * n)
            daemon.wait_event("file.settled", count=len(paths))
            daemon.wait_event("audio.probed")  # a job is under way: its writes wait
            code, took = terminated(daemon, GRACE + STOP_MARGIN)
    finally:
        daemon.kill()
    within_grace(daemon, code, took)
    assert not daemon.named("job.crashed")
    # flakes19: every job ended within the grace, no worker killed at the margin's end
    assert not daemon.named("daemon.abandoned"), "".join(daemon.raw)  # each worker's events
    assert setup.api.uploads == []
    assert not any(path.with_suffix(".txt").exists() for path in paths)
    done_once_again(setup, paths)


def test_the_turn_and_the_database_are_one_wait_counted_from_its_start(tmp_path: Path) -> None:
    """A write finding the write turn held, then, once had, the database in another
    process's write transaction: SQLite's "database is locked" when the one wait is over,
    counted from its start, not a second wait of its own after the turn's."""
    database = tmp_path / "ledger.sqlite3"
    made = sqlite3.connect(database)
    made.executescript("CREATE TABLE files (error TEXT)")
    made.close()
    wait = 2.0
    commit = GroupCommit(database, "", name="test-writer", wait=wait)
    try:
        with (
            holding(database, TRANSACTION),
            holding(tmp_path / "ledger.sqlite3.lock", HOLDER) as turn,
        ):
            assert turn.stdin is not None
            threading.Timer(wait / 2, turn.stdin.close).start()  # the turn, had half-way
            started = time.monotonic()
            with pytest.raises(sqlite3.OperationalError) as raised:
                commit.write(lambda db: db.execute("INSERT INTO files VALUES ('x')"))
            took = time.monotonic() - started
        assert locked.busy(raised.value), raised.value
        assert wait <= took <= wait + patience(1), took
    finally:
        commit.close()
    made = sqlite3.connect(database)
    assert made.execute("SELECT count(*) FROM files").fetchone() == (0,)  # nothing written
    made.close()

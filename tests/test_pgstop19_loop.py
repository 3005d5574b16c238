"""pgstop19: a stop while the main loop itself (not a worker) waits in a ledger statement,
for a table another session holds (``psql`` left in ``BEGIN; LOCK TABLE files;``: reads
wait too), ends within shutdown_grace (plus ``STOP_MARGIN``), not after the statement's
30 s: the stop gives the ledger up from the moment it is asked, the statement is cancelled
and the file is done once at the next start. Through the real ``dropscribe`` process and
the real server."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

import pg
from conftest import DaemonProcess, make_wav, wait_for
from test_grace18_stop import done_once_again, stopping, terminated, within_grace
from test_pggrace18_stop import locked, shared, waiting_on

pytestmark = pytest.mark.slow

__all__ = ["shared"]  # the fixture


def test_a_stop_while_the_main_loop_waits_for_a_locked_table_ends_within_the_grace(
    shared: Any,
) -> None:
    """SIGTERM while the main loop's look-up of a new file waits for the files table
    another session holds: exit 0 within shutdown_grace + STOP_MARGIN, no crash, nothing
    claimed or written; once the holder lets go, a restart does the file once."""
    path = stopping(shared, 1)[0]
    daemon = DaemonProcess(shared)
    try:
        daemon.wait_event("daemon.started")
        with locked(shared.url, "files", "ACCESS EXCLUSIVE"):
            make_wav(path)
            wait_for(
                lambda: waiting_on(shared.url, "files") >= 1,
                timeout=30,
                what="the main loop's look-up waiting for the lock",
            )
            assert not daemon.named("file.detected")  # the main loop waits, no worker
            code, took = terminated(daemon)
            assert waiting_on(shared.url, "files") == 0  # cancelled, not left waiting
    finally:
        daemon.kill()
    within_grace(daemon, code, took)
    assert not daemon.named("daemon.crashed")
    assert not daemon.named("ledger.unavailable")  # a stop, not a database gone
    assert shared.api.uploads == []
    with psycopg.connect(shared.url, password=pg.PASSWORD) as db:
        assert db.execute("SELECT count(*) FROM files").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM claims").fetchone() == (0,)  # none left
    done_once_again(shared, [path])

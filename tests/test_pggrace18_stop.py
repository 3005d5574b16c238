"""pggrace18: on PostgreSQL too a stop ends within shutdown_grace (plus ``STOP_MARGIN``)
while another session holds a lock the daemon's write waits for (``psql`` left in
``BEGIN; LOCK TABLE files IN EXCLUSIVE MODE;``): the waiting statement is cancelled when
the grace is over, its transaction rolled back, and the files run again at the next
start, exactly once. Through the real ``dropscribe`` process and the real server."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

import pg
from conftest import DaemonProcess, make_wav, wait_for
from test_grace18_stop import done_once_again, stopping, terminated, within_grace

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow


@pytest.fixture
def shared(setup: Any, pg_url: str) -> Any:
    """The daemon's ledger in a fresh database of the real PostgreSQL."""
    secret = setup.root / "ledger.password"
    secret.write_text(pg.PASSWORD)
    setup.url = pg_url
    setup.data["ledger"] = {"url": pg_url, "password_file": str(secret)}
    return setup


@contextlib.contextmanager
def locked(url: str, table: str, mode: str = "EXCLUSIVE") -> Iterator[psycopg.Connection[Any]]:
    """Another session holding ``table`` in ``mode`` (EXCLUSIVE: reads go on, writes wait;
    ACCESS EXCLUSIVE, a bare ``LOCK TABLE``'s: reads wait too) until the block ends, as a
    ``psql`` left in a transaction does."""
    with psycopg.connect(url, password=pg.PASSWORD) as db:
        db.execute(f"LOCK TABLE {table} IN {mode} MODE")
        try:
            yield db
        finally:
            db.rollback()


def waiting_on(url: str, table: str) -> int:
    """How many sessions wait for a lock on ``table`` (PostgreSQL's lock queue)."""
    with psycopg.connect(url, password=pg.PASSWORD) as db:
        row = db.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
            (table,),
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("processes", [1, 2])
def test_a_stop_with_a_table_locked_by_another_session_ends_within_the_grace(
    shared: Any, processes: int
) -> None:
    """SIGTERM while jobs (in the daemon, or worker processes) wait for the files table
    another session holds: exit 0 within shutdown_grace + STOP_MARGIN (not the 30-s
    statement_timeout), nothing written, no ledger.unavailable, no worker killed; once the
    holder lets go, a restart does each file once, uploaded once."""
    paths = stopping(shared, processes)
    daemon = DaemonProcess(shared)
    try:
        daemon.wait_event("daemon.started")
        with locked(shared.url, "files"):
            for n, path in enumerate(paths):
                make_wav(path, freq=300 + 100 * n)
            daemon.wait_event("file.settled", count=len(paths))
            wait_for(
                lambda: waiting_on(shared.url, "files") >= processes,
                timeout=30,
                what="the jobs' writes waiting for the lock",
            )
            code, took = terminated(daemon)
            assert waiting_on(shared.url, "files") == 0  # cancelled, not left waiting
    finally:
        daemon.kill()
    within_grace(daemon, code, took)
    assert not daemon.named("job.crashed")
    assert not daemon.named("ledger.unavailable")  # a stop, not a database gone
    assert len(daemon.named("job.abandoned")) == processes, daemon
    # flakes19: every job ended within the grace, no worker killed at the margin's end
    assert not daemon.named("daemon.abandoned"), daemon.named("daemon.abandoned")
    assert shared.api.uploads == []
    assert not any(path.with_suffix(".txt").exists() for path in paths)
    with psycopg.connect(shared.url, password=pg.PASSWORD) as db:
        assert db.execute("SELECT count(*) FROM files").fetchone() == (0,)  # rolled back
    done_once_again(shared, paths)

"""uploads19: at a stop, a write keeping what was paid for (a job's fresh transcript, a
chunk's, its file finished) waits up to ``KEPT`` past the grace for a ledger another
process holds briefly, rather than giving up at the first contention and leaving the
request to be paid again at the next start; any other write gives up at once. Real
SQLite, the ledger's real writer, another process in a write transaction (as
test_lock17_held.py); the holder lets go at the writer's first wait, so the order is
the same on any machine."""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Any

import pytest

from conftest import patience
from dropscribe.ledger import writeturn
from dropscribe.ledger.groupcommit import GroupCommit
from dropscribe.ledger.writeturn import GaveUp
from dropscribe.vocab.config import KEPT
from test_lock17_held import TRANSACTION, holding

if TYPE_CHECKING:
    from pathlib import Path

INSERT = "INSERT INTO files VALUES ('x')"


def made(tmp_path: Path) -> Path:
    database = tmp_path / "ledger.sqlite3"
    db = sqlite3.connect(database)
    db.executescript("PRAGMA journal_mode=WAL; CREATE TABLE files (error TEXT)")
    db.close()
    return database


def rows(database: Path) -> int:
    db = sqlite3.connect(database)
    try:
        return int(db.execute("SELECT count(*) FROM files").fetchone()[0])
    finally:
        db.close()


def test_a_kept_write_after_the_grace_waits_for_a_ledger_let_go_meanwhile(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The grace over, a kept write finding the database in another process's write
    transaction waits (naps); the holder lets go at its first nap, and the write is
    made: the paid transcript is in the ledger."""
    database = made(tmp_path)
    commit = GroupCommit(database, "", name="test-writer")
    try:
        with holding(database, TRANSACTION) as holder:
            napped = []
            nap = writeturn.WriteTurn.nap

            def let_go_then_nap(turn: writeturn.WriteTurn, seconds: float, late: float = 0.0):
                if not napped:
                    assert holder.stdin is not None
                    holder.stdin.close()  # it lets go and ends
                    holder.wait(timeout=patience(10))
                napped.append(late)
                return nap(turn, seconds, late)

            monkeypatch.setattr(writeturn.WriteTurn, "nap", let_go_then_nap)
            commit.give_up_at(time.monotonic())  # the stop's grace is over
            commit.write(lambda db: db.execute(INSERT), kept=True)
        assert napped, "the write never waited"
        assert napped[0] == KEPT, napped
    finally:
        commit.close()
    assert rows(database) == 1


def test_a_plain_write_after_the_grace_gives_up_at_the_first_contention(tmp_path: Path) -> None:
    """The grace over, a write that keeps nothing paid for gives up as soon as it finds
    the database held elsewhere (the job is done at the next start), long before the
    holder would let go."""
    database = made(tmp_path)
    commit = GroupCommit(database, "", name="test-writer")
    try:
        with holding(database, TRANSACTION):
            commit.give_up_at(time.monotonic())
            started = time.monotonic()
            with pytest.raises(GaveUp):
                commit.write(lambda db: db.execute(INSERT))
            assert time.monotonic() - started < patience(5)
    finally:
        commit.close()
    assert rows(database) == 0

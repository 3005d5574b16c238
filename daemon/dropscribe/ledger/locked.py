"""SQLite's own "database is locked": another process held a write transaction on the
ledger for longer than the busy timeout (30 s; a ``sqlite3`` shell left in ``BEGIN
IMMEDIATE``, a backup tool). Said as ``LedgerUnavailable``, as the write turn held
elsewhere is (``writeturn.py``): the daemon's file waits, nothing counted against it,
instead of a ``job.crashed`` that counts an attempt (review17b). The message names the
database and, from ``/proc/locks``, the process holding its WAL write lock.

The ledger's writer waits for that lock itself (``begin``), not in SQLite's busy handler:
from the moment its wait for the write turn began, so a write waits 30 s in all, not 30
for the turn and 30 more for the database; and a stopping daemon can cut the wait short
(grace18), which a sleep inside SQLite cannot be."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dropscribe.errors import LedgerUnavailable
from dropscribe.ledger.writeturn import GaveUp

if TYPE_CHECKING:
    from dropscribe.ledger.writeturn import WriteTurn

WAIT = 30  # seconds: how long the writer waits for the database (begin), within the turn's
# The WAL write lock: one byte of <database>-shm (sqlite's wal.c: WALINDEX_LOCK_OFFSET
# 120 + WAL_WRITE_LOCK 0), a POSIX lock held for the whole write transaction.
WRITE_LOCK = "120"
# Between two tries: SQLite's own busy handler's naps (main.c, sqliteDefaultBusyCallback).
NAPS = (0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.025, 0.025, 0.05, 0.05, 0.1)


def busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "database is locked" (SQLITE_BUSY, any extended code),
    or the ledger's error raised from it."""
    if isinstance(exc, LedgerUnavailable) and exc.__cause__ is not None:
        exc = exc.__cause__
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)  # None: raised by us, not by SQLite
    return isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_BUSY


def writer(database: Path) -> int | None:
    """The pid holding ``database``'s WAL write lock (``/proc/locks``), or None when it
    cannot be told (no procfs, another pid namespace, let go meanwhile)."""
    try:
        ino = Path(f"{database}-shm").stat().st_ino
        lines = Path("/proc/locks").read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return None
    # "5: POSIX  ADVISORY  WRITE 1234 fe:00:5678 120 120"; a waiter's has "->" after "5:"
    fields = [f[-7:] for f in map(str.split, lines) if len(f) >= 8]
    pids = {
        int(pid)
        for kind, _, mode, pid, ident, start, _ in fields
        if kind == "POSIX"
        and mode == "WRITE"
        and ident.endswith(f":{ino}")  # by inode: overlayfs shows another device than stat
        and start == WRITE_LOCK
        and pid.isdigit()
    }
    pids.discard(0)  # a pid outside our namespace
    return pids.pop() if len(pids) == 1 else None


def unavailable(exc: sqlite3.Error, database: Path | None) -> LedgerUnavailable:
    """``exc`` (``busy``) as the ledger's LedgerUnavailable, naming the holder if known."""
    if database is None:
        return LedgerUnavailable(f"cannot write the ledger: {exc} (waited {WAIT} s)")
    pid = writer(database)
    by = f"process {pid}" if pid is not None else "another process"
    return LedgerUnavailable(
        f"cannot write the ledger: {database} is in a write transaction of {by}"
        f" ({exc}; waited {WAIT} s for it)"
    )


def begin(
    db: sqlite3.Connection, until: float, turn: WriteTurn, database: Path, late: float = 0.0
) -> None:
    """``BEGIN IMMEDIATE`` on ``db`` (its busy timeout 0), tried again while the database
    is locked until ``until`` (monotonic): then SQLite's own "database is locked" is
    raised (``unavailable`` words it). ``GaveUp`` when ``turn.give_up_at``'s moment
    (``late`` seconds after it, as ``WriteTurn.take``) comes first."""
    tries = 0
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not busy(exc):
                raise
            now = time.monotonic()
            if turn.until + late < until and now >= turn.until + late:
                pid = writer(database)
                by = f"process {pid}" if pid is not None else "another process"
                raise GaveUp(
                    f"cannot write the ledger: {database} is in a write transaction of {by}"
                    " (given up: the daemon is stopping)"
                ) from exc
            if now >= until:
                raise
            turn.nap(min(NAPS[min(tries, len(NAPS) - 1)], until - now), late)
            tries += 1
        else:
            return

"""SQLite's own "database is locked": another process held a write transaction on the
ledger for longer than the busy timeout (30 s; a ``sqlite3`` shell left in ``BEGIN
IMMEDIATE``, a backup tool). Said as ``LedgerUnavailable``, as the write turn held
elsewhere is (``writeturn.py``): the daemon's file waits, nothing counted against it,
instead of a ``job.crashed`` that counts an attempt (review17b). The message names the
database and, from ``/proc/locks``, the process holding its WAL write lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from dropscribe.errors import LedgerUnavailable

WAIT = 30  # seconds: sqlite3.connect(timeout=30), groupcommit.py's busy timeout
# The WAL write lock: one byte of <database>-shm (sqlite's wal.c: WALINDEX_LOCK_OFFSET
# 120 + WAL_WRITE_LOCK 0), a POSIX lock held for the whole write transaction.
WRITE_LOCK = "120"


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

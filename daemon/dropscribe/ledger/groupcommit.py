"""An SQLite database (WAL) whose writes are group-committed by one writer thread.

The writer commits whatever has queued up as a single transaction: every write
is durable (``synchronous=FULL``) when ``write()`` returns, yet many threads
share each fsync. Each write runs inside its own savepoint, so one that fails
fails alone. Reads use one connection per thread and never wait for writes.

Writers in several processes (the daemon's worker processes) take turns on a
blocking ``flock`` of ``<database>.lock`` around each transaction (``writeturn.py``;
waited for 30 s at most, as SQLite waits for a locked database, and the database
itself within the same 30 s: ``locked.begin``). Left to
SQLite, a writer that finds the database locked sleeps and retries (1, 2, 5, 10
... 100 ms), and under steady writes from another process it can lose for
hundreds of milliseconds while every thread waiting on its commit stands
still; the kernel hands a released flock to its waiter at once.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar, cast

import structlog

from dropscribe.ledger import locked
from dropscribe.ledger.writeturn import WAIT, GaveUp, WriteTurn
from dropscribe.vocab.config import KEPT

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

log = structlog.get_logger("dropscribe")

T = TypeVar("T")
BATCH = 256  # most writes committed together
# A write waiting at a stop gives up this long before the grace is over, so that its job
# ends (job.abandoned) while the workers are still waited for: given up at the very
# moment the wait for them ends, it ended after it, counted a straggler and never said.
UNWIND = 0.2  # seconds
AT_NEXT_START = "nothing to do: its file is looked at again when the daemon next starts"


class _Pending(Generic[T]):
    """A write's outcome, waited for on a bare lock (a Future's condition variable costs
    several times more, and a group commit settles hundreds of them)."""

    __slots__ = ("_done", "error", "value")

    def __init__(self) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self.value: T | None = None
        self.error: BaseException | None = None

    def settle(self, value: T | None, error: BaseException | None) -> None:
        self.value, self.error = value, error
        self._done.release()

    def result(self) -> T:
        self._done.acquire()
        if self.error is not None:
            raise self.error
        return cast("T", self.value)


class _Write(NamedTuple):
    fn: Callable[[sqlite3.Connection], Any]
    pending: _Pending[Any] | None  # who waits for it; None: posted
    kept: bool  # it keeps what was paid for: waits ``KEPT`` more at a stop


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    db.execute("PRAGMA synchronous=FULL")
    return db


class GroupCommit:
    """Thread-safe reads and group-committed writes; ``close()`` stops the writer."""

    def __init__(self, path: Path, schema: str, name: str, wait: float = WAIT) -> None:
        """``wait``: longest a write waits for the ledger held by another process (its
        write turn, then its database, both counted from the same start)."""
        self._path = path
        writer = _connect(path)
        writer.execute("PRAGMA journal_mode=WAL")
        writer.executescript(schema)
        writer.execute("PRAGMA busy_timeout = 0")  # locked.begin waits, as long as the turn
        self._turn = WriteTurn(f"{path}.lock")
        self._wait = wait
        self._connections = [writer]
        self._local = threading.local()
        self._guard = threading.Lock()
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._writer = threading.Thread(
            target=self._write_loop, args=(writer,), name=name, daemon=True
        )
        self._writer.start()

    def close(self) -> None:
        """Commit what is queued, stop the writer, close every connection."""
        self._queue.put(None)
        self._writer.join()
        with self._guard:
            for db in self._connections:
                db.close()
            self._connections.clear()
            self._turn.close()  # a second close() is harmless

    def give_up_at(self, when: float) -> None:
        """From ``when`` (monotonic; ``UNWIND`` before it) no write waits for the ledger
        held elsewhere, those waiting then included: they fail (``GaveUp``) and are done
        at the next start."""
        self._turn.give_up_at(when - UNWIND)

    def read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = _connect(self._path)
            self._local.db = db
            with self._guard:
                self._connections.append(db)
        return db.execute(sql, args).fetchall()

    def untouched(self, fn: Callable[[sqlite3.Connection], object]) -> bool:
        """True when ``fn`` runs to its end without writing (it is run on a query-only
        connection, in a transaction rolled back after it): a command that only reads
        then needs no write turn, which another process may hold for as long as it likes
        (attack17). False when ``fn`` would write; its other errors are raised."""
        db = _connect(self._path)
        try:
            db.execute("PRAGMA query_only = 1")
            db.execute("BEGIN")
            fn(db)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_READONLY:
                raise
            return False
        finally:
            db.close()  # rolls back what was begun
        return True

    def write(self, fn: Callable[[sqlite3.Connection], T], *, kept: bool = False) -> T:
        """Run ``fn`` in the next group transaction; return once it is committed.
        ``kept``: it keeps what was paid for, and waits ``KEPT`` more at a stop."""
        pending: _Pending[T] = _Pending()
        self._put(_Write(fn, pending, kept))
        return pending.result()

    def post(self, fn: Callable[[sqlite3.Connection], Any], *, kept: bool = False) -> None:
        """Queue ``fn`` for the next group transaction without waiting for it.

        For writes whose loss in a crash only means redoing work the ledger still
        prevents from being uploaded twice. Writes keep their order; ``close()``
        commits whatever is queued.
        """
        self._put(_Write(fn, None, kept))

    def _put(self, item: _Write) -> None:
        self._queue.put(item)

    def _write_loop(self, db: sqlite3.Connection) -> None:
        since: float | None = None  # set when the ledger was not had: see _commit
        while True:
            item = self._queue.get()
            if item is None:
                return
            gathered = time.monotonic()  # what is queued from now on is the next batch
            batch = [item]
            stop = False
            while len(batch) < BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            start = gathered if since is None else since
            had = _commit(db, batch, self._turn, start, self._wait, self._path)
            since = None if had else gathered
            if stop:
                return


def _commit(
    db: sqlite3.Connection,
    batch: list[_Write],
    turn: WriteTurn,
    since: float,
    wait: float,
    path: Path,
) -> bool:
    """Commit ``batch``; False when the ledger was not had (held elsewhere). ``since``:
    when this batch was gathered, or the batch before if that was not had: this one's
    writes were queued while it was waited for, so they wait no longer than ``wait`` from
    then, for the turn and the database together; at a stop, ``KEPT`` longer when one of
    them keeps what was paid for (the others with it: one transaction)."""
    results: list[tuple[_Pending[Any] | None, Any, BaseException | None]] = []
    had = False
    late = KEPT if any(write.kept for write in batch) else 0.0
    try:
        # OSError, TurnTaken, locked (held elsewhere), GaveUp: nothing began, all fail below
        turn.take(since, wait, late)
        locked.begin(db, since + wait, turn, path, late)
        had = True
        for fn, pending, _ in batch:
            db.execute("SAVEPOINT one")
            try:
                value = fn(db)
                db.execute("RELEASE one")
            except Exception as exc:  # this write fails alone (SQL, or its own checks)
                # and its caller gets the error; the rest go on, and so does the writer
                db.execute("ROLLBACK TO one")
                db.execute("RELEASE one")
                results.append((pending, None, exc))
            else:
                results.append((pending, value, None))
        db.execute("COMMIT")
    except (sqlite3.Error, OSError) as exc:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the commit failed; so be it
                db.execute("ROLLBACK")
        failed = exc
        if not isinstance(exc, sqlite3.Error):  # every failed write is the ledger's error
            failed = sqlite3.OperationalError(f"cannot take the ledger's write turn: {exc}")
        results = [(write.pending, None, failed) for write in batch]
    finally:
        turn.release()  # no error: not held is fine, the fd is open
    for pending, value, error in results:
        if pending is not None:
            pending.settle(value, error)
        elif isinstance(error, GaveUp):  # a posted write, the daemon stopping: said here
            log.warning("ledger.write_failed", error=str(error), action=AT_NEXT_START)
        elif error is not None:  # a posted write: nobody waits for it, so say it here
            log.error("ledger.write_failed", error=str(error))
    return had

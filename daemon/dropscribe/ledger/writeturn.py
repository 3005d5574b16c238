"""The SQLite ledger's write turn: an exclusive ``flock`` of ``<database>.lock`` that
every process writing the ledger takes around each transaction (``groupcommit.py``).

It is waited for at most ``WAIT`` seconds, as SQLite's busy timeout bounds a locked
database: a process that holds it for ever (a dropscribe stopped with Ctrl-Z mid-commit,
a stuck second daemon) makes the writes fail with ``TurnTaken``, which names the lock
file and, from ``/proc/locks``, its holder, instead of waiting for ever (lock17).

The wait is still the kernel's, not a polling loop (a released flock goes to its waiter
at once): a blocking ``flock`` of a second open of the file, in a thread of its own. A
wait given up leaves that thread blocked; it lets the turn go as soon as it gets it, and
the next wait takes it over rather than starting another.

Every wait also ends at the moment given to ``give_up_at`` (a stopping daemon's grace
over, grace18), wherever it is: the turn's, and SQLite's busy wait (``locked.begin``),
which naps on the same condition.
"""

from __future__ import annotations

import fcntl
import math
import os
import sqlite3
import threading
import time
from pathlib import Path

WAIT = 30.0  # seconds, as sqlite3.connect(timeout=30) waits for a locked database


class TurnTaken(sqlite3.OperationalError):
    """The write turn was not had within the wait: another process holds it."""


class GaveUp(sqlite3.OperationalError):
    """A wait for the ledger (its turn, a locked database) cut short by ``give_up_at``:
    the daemon is stopping and its grace is over. Nothing of the write was done."""


def holder(fd: int) -> int | None:
    """The pid holding a flock on the file open as ``fd`` (``/proc/locks``), or None
    when it cannot be told (no procfs, another pid namespace, let go meanwhile)."""
    st = os.fstat(fd)
    exact = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return None
    # "3: FLOCK  ADVISORY  WRITE 1234 00:2f:5678 0 EOF"; a waiter's line has "->" after "3:"
    held = [f[4:6] for f in map(str.split, lines) if len(f) > 5 and f[1] == "FLOCK"]
    pids = {int(pid) for pid, ident in held if ident == exact and pid.isdigit()}
    if not pids:  # overlayfs shows another device than stat: by inode, if only one has it
        pids = {
            int(pid) for pid, ident in held if ident.endswith(f":{st.st_ino}") and pid.isdigit()
        }
    pids.discard(0)  # a pid outside our namespace
    return pids.pop() if len(pids) == 1 else None


class _Waiter(threading.Thread):
    """A blocking flock of its own open of the lock file; the turn is handed to the
    taker if it still wants it, else let go at once."""

    def __init__(self, turn: WriteTurn) -> None:
        super().__init__(name="dropscribe-write-turn", daemon=True)
        self._turn = turn
        self.wanted = True  # under turn.mu
        self.got = threading.Event()
        self.fd = -1
        self.error: OSError | None = None

    def run(self) -> None:
        try:
            fd = os.open(self._turn.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            self._settle(-1, exc)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            os.close(fd)
            self._settle(-1, exc)
            return
        if not self._settle(fd, None):
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _settle(self, fd: int, error: OSError | None) -> bool:
        with self._turn.mu:
            self._turn.waiter = None
            if not self.wanted:
                return False
            self.fd, self.error = fd, error
            self.got.set()
            self._turn.changed.notify_all()
            return True


class WriteTurn:
    """The turn, taken and let go by one thread at a time (the ledger's writer)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.mu = threading.Lock()
        self.changed = threading.Condition(self.mu)  # the turn had, or give_up_at moved
        self.until = math.inf  # monotonic: no wait goes past it (give_up_at)
        self.waiter: _Waiter | None = None
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._held = -1  # the descriptor whose flock is the turn, while held

    def take(self, since: float | None = None, wait: float = WAIT, late: float = 0.0) -> None:
        """Hold the turn; ``TurnTaken`` ``wait`` seconds after ``since`` (a monotonic
        time; now if None), ``GaveUp`` at ``give_up_at``'s moment (``late`` seconds
        after it: a write keeping what was paid for) if that comes first, OSError if
        flock fails."""
        deadline = (time.monotonic() if since is None else since) + wait
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            self._held = self._fd
            return
        with self.mu:
            waiter = self.waiter
            if waiter is None:
                waiter = self.waiter = _Waiter(self)
                waiter.start()
            waiter.wanted = True
            while not waiter.got.is_set():
                left = min(deadline, self.until + late) - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(left)
            if not waiter.got.is_set():  # given up: it lets the turn go when it gets it
                waiter.wanted = False
                pid = holder(self._fd)
                by = f"process {pid}" if pid is not None else "another process"
                msg = f"cannot take the ledger's write turn: {self.path} is held by {by}"
                if self.until + late < deadline:
                    raise GaveUp(f"{msg} (given up: the daemon is stopping)")
                raise TurnTaken(f"{msg} (waited {wait:g} s for it)")
        if waiter.error is not None:
            raise waiter.error
        self._held = waiter.fd

    def give_up_at(self, when: float) -> None:
        """No wait for the ledger goes past ``when`` (monotonic), those under way included:
        the daemon is stopping, and what was not written is done at its next start."""
        with self.mu:
            self.until = min(self.until, when)
            self.changed.notify_all()

    def nap(self, seconds: float, late: float = 0.0) -> None:
        """Sleep ``seconds``, or less: until ``give_up_at``'s moment (even one given
        meanwhile; ``late`` seconds after it, as ``take``)."""
        end = time.monotonic() + seconds
        with self.mu:
            while (left := min(end, self.until + late) - time.monotonic()) > 0:
                self.changed.wait(left)

    def release(self) -> None:
        """Let the turn go (nothing if it is not held)."""
        fd, self._held = self._held, -1
        if fd < 0:
            return
        fcntl.flock(fd, fcntl.LOCK_UN)
        if fd != self._fd:
            os.close(fd)

    def close(self) -> None:
        """Let go, and close the lock file (a waiter left blocked closes its own)."""
        self.release()
        with self.mu:
            if self.waiter is not None:
                self.waiter.wanted = False
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

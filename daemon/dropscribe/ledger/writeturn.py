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
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path

WAIT = 30.0  # seconds, as sqlite3.connect(timeout=30) waits for a locked database


class TurnTaken(sqlite3.OperationalError):
    """The write turn was not had within the wait: another process holds it."""


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
            return True


class WriteTurn:
    """The turn, taken and let go by one thread at a time (the ledger's writer)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.mu = threading.Lock()
        self.waiter: _Waiter | None = None
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._held = -1  # the descriptor whose flock is the turn, while held

    def take(self, since: float | None = None, wait: float = WAIT) -> None:
        """Hold the turn; ``TurnTaken`` ``wait`` seconds after ``since`` (a monotonic
        time; now if None), OSError if flock fails."""
        left = wait if since is None else since + wait - time.monotonic()
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
        if not waiter.got.wait(max(0.0, left)):
            with self.mu:
                if not waiter.got.is_set():  # given up: it lets the turn go when it gets it
                    waiter.wanted = False
                    pid = holder(self._fd)
                    by = f"process {pid}" if pid is not None else "another process"
                    msg = f"cannot take the ledger's write turn: {self.path} is held by {by}"
                    msg += f" (waited {wait:g} s for it)"
                    raise TurnTaken(msg)
        if waiter.error is not None:
            raise waiter.error
        self._held = waiter.fd

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

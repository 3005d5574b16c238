"""What the daemon knows of each endpoint's health, kept where ``dropscribe status`` (a
separate process) can read it: ``state_dir/endpoints.json``, rewritten whole (a temporary
file renamed over it) at each change: paused (why, until when), unreachable, ok.

Shape (``status --json`` passes each entry on)::

    {"endpoints": {"NAME": {"state": "ok" | "paused" | "unreachable",
                            "reason": str | null, "status": int | null,
                            "since": epoch seconds, "next_probe": epoch seconds | null,
                            "asked": bool (the server asked for the pause), "pid": int,
                            "run": int (the daemon's main process),
                            "born": int | null (its start, clock ticks after boot)}}}

Several worker processes each write their own view of an endpoint; the last change
wins. A write that fails is logged and forgotten: this is a report, not a state, with
one use besides (session 22): a pause one worker process wrote is heeded by the others
(``Board.other``), so that a server asking for an hour's quiet, or found down, is asked
again by one process, not by each.

attack21: what is read back is checked as it is read: at most ``files.SMALL_FILE``
bytes of a regular file (a FIFO at its name hung ``status`` and the worker writing),
JSON a parser can read (nested ten thousand deep, it raised RecursionError in the upload
that changed an endpoint's state), each field of its type and each moment one a clock
can show (``next_probe: 1e300`` or ``NaN`` was a traceback in ``status``); what is not
is left out, as if it had not been written."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import structlog

from dropscribe.config import files

log = structlog.get_logger("dropscribe")

BOARD_NAME = "endpoints.json"
LATEST = 253402300799.0  # 9999-12-31T23:59:59Z, the last moment a datetime can show
# Each field an entry may have, and what it must be to be kept (bool is no int here).
FIELDS: dict[str, type | tuple[type, ...]] = {
    "state": str,
    "reason": str,
    "status": int,
    "since": (int, float),
    "next_probe": (int, float),
    "asked": bool,
    "pid": int,
    "run": int,
    "born": int,
}
MOMENTS = {"since", "next_probe"}


class Board:
    """Writes endpoint states into ``state_dir/endpoints.json``."""

    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / BOARD_NAME
        self._lock = state_dir / "endpoints.lock"
        self._seen: tuple[int, int, int] | None = None  # the board last read: inode, ns, size
        self._others: dict[str, dict[str, Any]] = {}

    def other(self, name: str) -> dict[str, Any] | None:
        """``name``'s entry as another process last wrote it (None: as this process did,
        or none). Read again only when the file changed (a stat per upload)."""
        try:
            st = self._path.stat()
        except OSError:
            return None
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if seen != self._seen:
            self._seen = seen
            self._others = read(self._path.parent)
        entry = self._others.get(name)
        if entry is None or entry.get("pid") == os.getpid() or not _ours(entry):
            return None  # this process's own, or a daemon's before (or beside) this one
        return entry

    def start(self, names: list[str]) -> None:
        """Every endpoint is ok when uploads begin (a pause is this run's own), but for
        what another worker process of this run already wrote (one that started sooner
        may have paused an endpoint before this one was ready)."""
        self._change(dict.fromkeys(names, _entry("ok")), replace=True)

    def set(
        self,
        name: str,
        state: str,
        reason: str | None = None,
        status: int | None = None,
        seconds: float | None = None,
        *,
        asked: bool = False,
    ) -> None:
        """``name`` is ``state`` now; ``seconds``: until its next probe; ``asked``: the
        server asked for this pause (a long Retry-After), nothing of the user's to fix."""
        self._change({name: {**_entry(state, reason, status, seconds), "asked": asked}})

    def _change(self, entries: dict[str, dict[str, Any]], *, replace: bool = False) -> None:
        try:
            fd = os.open(self._lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                known = read(self._path.parent)
                if replace:
                    known = {k: v for k, v in known.items() if _ours(v)}
                    entries = {k: v for k, v in entries.items() if k not in known}
                known.update(entries)
                temp = self._path.with_name(f".{BOARD_NAME}.{os.getpid()}")
                _write_private(temp, json.dumps({"endpoints": known}, sort_keys=True))
                temp.replace(self._path)
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("endpoint.board_failed", path=str(self._path), error=str(exc))


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` anew, 0600 from its first byte whatever the umask (a reason may
    quote a server's answer), never through a link planted under its name (one left
    by a process that died is ours to remove), and on disk before it is renamed."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # as asked, where a umask took the owner's bits too
        data = text.encode()
        while data:
            data = data[os.write(fd, data) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _entry(
    state: str,
    reason: str | None = None,
    status: int | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    now = time.time()
    return {
        "state": state,
        "reason": reason,
        "status": status,
        "since": now,
        "next_probe": now + seconds if seconds is not None else None,
        "pid": os.getpid(),
        "run": _run()[0],
        "born": _run()[1],
    }


def _ours(entry: dict[str, Any]) -> bool:
    """Whether ``entry`` was written by a process of this daemon's run."""
    return (entry.get("run"), entry.get("born")) == _run()


_RUNS: dict[int, tuple[int, int | None]] = {}  # by this process's pid: its run


def _run() -> tuple[int, int | None]:
    """The daemon's main process (a worker process's parent, or this process) and its
    start (review22: the pid alone is the same at every start in a container, and a
    pause a worker process left before a restart was heeded after it)."""
    if (run := _RUNS.get(os.getpid())) is None:
        parent = multiprocessing.parent_process()
        pid = parent.pid if parent is not None and parent.pid is not None else os.getpid()
        run = _RUNS[os.getpid()] = (pid, _started(pid))
    return run


def _started(pid: int) -> int | None:
    """``pid``'s start in clock ticks after boot (``/proc/PID/stat``, field 22), None
    where there is no ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        return int(stat[stat.rindex(b")") + 2 :].split()[19])  # after the name: from field 3
    except (OSError, ValueError, IndexError):
        return None


def read(state_dir: Path) -> dict[str, dict[str, Any]]:
    """The endpoints' entries as last written (empty when none were), each with only
    the fields that are of their kind (``FIELDS``)."""
    try:
        data = json.loads(files.read(state_dir / BOARD_NAME))
    except (OSError, ValueError, RecursionError):  # none, not a file, too big or too deep
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("endpoints"), dict):
        return {}
    return {str(k): _checked(v) for k, v in data["endpoints"].items() if isinstance(v, dict)}


def _checked(entry: dict[str, Any]) -> dict[str, Any]:
    """``entry``'s fields that are what ``FIELDS`` says (a null kept)."""
    return {
        name: value
        for name, value in entry.items()
        if name in FIELDS and (value is None or _fits(name, value))
    }


def _fits(name: str, value: object) -> bool:
    """Whether ``value`` is of ``name``'s kind; a moment, epoch seconds a datetime can
    show (not NaN, not 1e300)."""
    kind = FIELDS[name]
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        return False
    if name in MOMENTS and isinstance(value, int | float):
        return math.isfinite(value) and 0 <= value <= LATEST
    return True

"""When an inbox is polled, and polled watches that neither start nor stop on the main
loop's time (watchstop20).

watchdog takes a polled watch's first snapshot in ``start``, on the caller's thread, and
its ``stop`` joins the snapshot under way. review20 measured a 100k-file folder under
load: a snapshot of 12.4 s, a SIGTERM's watch stop of 20.8 s (the promise: exit by
shutdown_grace plus 1 s), and a start holding the main loop (signals, /healthz) for the
whole first snapshot. Here the first snapshot is taken on a thread of its own, a snapshot
under way gives up at its next look once its watch is told to stop, and a stop waits for
the watches only until its deadline: a look that hangs (a dead NFS server) is left
behind, which loses nothing (the ledger is what matters; the next start rescans).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.observers.polling import PollingObserverVFS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from watchdog.observers.api import BaseObserver

    from dropscribe.vocab.config import Inbox


# Filesystems whose changes made elsewhere (another host, the FUSE daemon, the VM's
# host) inotify never hears of: `watch: auto` polls them.
REMOTE_FILESYSTEMS = {
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "afs",
    "ceph",
    "glusterfs",
    "lustre",
    "gpfs",
    "ncpfs",
    "davfs",
    "vboxsf",
    "vmhgfs",
    "prl_fs",
    "fuse",
    "fuseblk",
}


def filesystem_type(path: Path, mountinfo: str) -> str:
    """The type of the filesystem holding ``path``, from /proc/self/mountinfo's text."""
    best, kind = "", "unknown"
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        mount = fields[4].replace("\\040", " ")
        fstype = fields[fields.index("-") + 1]
        inside = str(path) == mount or str(path).startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, fstype
    return kind


def watch_mode(inbox: Inbox, fstype: str) -> tuple[str, str]:
    """(native | poll, why) for an inbox on a filesystem of type ``fstype``."""
    if inbox.watch != "auto":
        return inbox.watch, "configured"
    if fstype in REMOTE_FILESYSTEMS or fstype.startswith("fuse."):
        return "poll", f"{fstype} is a network or FUSE filesystem: inotify misses remote changes"
    return "native", f"{fstype} is local"


def mountinfo() -> str:
    try:
        return Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


LOOK = 1.0  # seconds a polled folder is given to open (scan21): a dead server, no longer


def listable(path: Path, wait: float = LOOK) -> None:
    """Raise the OSError that keeps ``path`` from being listed, as its opening on a thread
    of its own tells it within ``wait`` seconds (scan21: not on the main loop's, which a
    share that does not answer held). A folder that has not answered by then is taken as
    listable: its first snapshot, in the background too, says otherwise (inbox.watch_failed)."""
    failed: list[OSError] = []
    answered = threading.Event()

    def look() -> None:
        try:
            with os.scandir(path):
                pass
        except OSError as exc:
            failed.append(exc)
        answered.set()

    threading.Thread(target=look, name="dropscribe-watch-look", daemon=True).start()
    answered.wait(wait)
    if failed:
        raise failed[0]


class _QuittingError(InterruptedError):
    """A snapshot's look refused: its watch is stopping."""


class _Quiet(logging.Filter):
    """watchdog logs a failed snapshot as a warning and "will retry": not one we ended."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(isinstance(arg, _QuittingError) for arg in args)


logging.getLogger("watchdog.observers.polling").addFilter(_Quiet())


class PolledObserver(PollingObserverVFS):
    """A polling observer whose snapshots follow no link (``lstat``, as ``scan`` follows
    none; review20) and stop at their next look once ``quit`` is called, and whose first
    snapshot ``begin`` takes on a thread of its own, then calls ``ready`` (or ``failed``
    with the error that kept it from watching)."""

    def __init__(self, interval: float) -> None:
        self._quit = threading.Event()
        self._starter: threading.Thread | None = None
        super().__init__(self._lstat, self._scandir, polling_interval=interval)

    def _look(self, path: str | None) -> None:
        if self._quit.is_set():
            raise _QuittingError(errno.EINTR, "the watch is stopping", path)

    def _lstat(self, path: str) -> os.stat_result:
        self._look(path)
        return os.lstat(path)

    def _scandir(self, path: str | None) -> Iterator[os.DirEntry[str]]:
        self._look(path)
        return os.scandir(path)

    def begin(self, ready: Callable[[], None], failed: Callable[[BaseException], None]) -> None:
        """Start watching: the first snapshot is taken on a thread named after this one."""

        def first() -> None:
            try:
                self.start()
            except _QuittingError:
                return  # stopped while taking it
            except Exception as exc:  # reported; the health check restarts it
                failed(exc)
                return
            if not self._quit.is_set():
                ready()

        self._starter = threading.Thread(target=first, name=f"{self.name}-start", daemon=True)
        self._starter.start()

    def starting(self) -> bool:
        """Its first snapshot is being taken (it watches once that is done)."""
        return self._starter is not None and self._starter.is_alive()

    def quit(self) -> None:
        """Tell a snapshot under way to give up at its next look (returns at once)."""
        self._quit.set()

    def stop(self) -> None:
        self.quit()
        super().stop()

    def join(self, timeout: float | None = None) -> None:
        if self._starter is not None:
            self._starter.join(timeout)
        with contextlib.suppress(RuntimeError):  # stopped before its thread started
            super().join(timeout)


def stop_all(observers: list[BaseObserver]) -> threading.Thread:
    """Stop ``observers`` on a thread of their own (returned, started), a polled
    snapshot under way told first to give up: a thread still running when its owner's
    deadline is over is a daemon thread, and the daemon leaves by ``os._exit`` while a
    thread of ours runs."""
    for observer in observers:
        if isinstance(observer, PolledObserver):
            observer.quit()  # first: every snapshot under way gives up at once

    def stop() -> None:
        for observer in observers:
            with contextlib.suppress(Exception):
                observer.stop()
        for observer in observers:
            with contextlib.suppress(RuntimeError):
                observer.join()

    stopper = threading.Thread(target=stop, name="dropscribe-watch-stop", daemon=True)
    stopper.start()
    return stopper

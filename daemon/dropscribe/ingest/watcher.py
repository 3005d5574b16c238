"""The watchdog adapter (the folder scans: walk.py).

Handlers only record a hint and return; the service decides what a hint means.
Scans walk an inbox for files that arrived while nobody was watching.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import structlog
from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CLOSED_NO_WRITE,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_OPENED,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from dropscribe.errors import SetupError
from dropscribe.ingest import native as inotify
from dropscribe.ingest import walk
from dropscribe.ingest.polling import (  # filesystem_type, watch_mode: theirs too
    PolledObserver,
    filesystem_type,
    listable,
    mountinfo,
    stop_all,
    watch_mode,
)
from dropscribe.outputs.sidecar import TEMP_SUFFIX

if TYPE_CHECKING:
    from collections.abc import Callable

    from watchdog.observers.api import BaseObserver

    from dropscribe.vocab.config import Inbox

log = structlog.get_logger("dropscribe.watcher")

scan = walk.scan  # the intake's, through here (a test puts a counting one in its place)

# watchdog warns when a folder created in a burst (mkdir -p a/b/c) gets its watch
# added twice; the second add just replaces the first. Harmless, and a warning
# raised inside its reader thread must never be able to end that thread.
warnings.filterwarnings(
    "ignore", message="Callback with id .* already exists", category=RuntimeWarning
)


class Hint(NamedTuple):
    """A watch event reduced to what matters."""

    path: Path
    is_dir: bool = False
    gone: bool = False  # deleted, or moved away
    # The wall clock when a native watch heard it: the file's mtime is on this clock
    # too (a local filesystem), so a file last written a settle time ago is quiet.
    # None from a polled watch (a network filesystem's mtimes are the server's).
    heard_at: float | None = None


# The events worth hearing of; the kernel is told to send no others (so our own reads
# of a file, and the opens and closes of every reader, cost nothing).
EVENTS = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]


class _Recorder(FileSystemEventHandler):
    """Turns every event into a hint; never blocks, never raises."""

    def __init__(self, put: Callable[[Hint], None], *, clocked: bool) -> None:
        self._put = put
        self._clocked = clocked  # native: the files' mtimes are on our clock

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            self._record(event)
        except Exception:  # an exception here would silently end the observer thread
            log.exception("watch.handler_failed", event_type=event.event_type)

    def _record(self, event: FileSystemEvent) -> None:
        if event.event_type in {EVENT_TYPE_OPENED, EVENT_TYPE_CLOSED_NO_WRITE}:
            return
        if event.is_directory and event.event_type in {EVENT_TYPE_MODIFIED, EVENT_TYPE_CLOSED}:
            return  # a folder's listing changed: the files' own events say which
        src = os.fsdecode(event.src_path)
        if not event.dest_path and (src.endswith(TEMP_SUFFIX) or _unnamed(src)):
            return  # our own sidecar being written: the busiest and least useful events
        heard_at = time.time() if self._clocked else None
        if event.dest_path:  # a move: the old name is gone, the new one appears
            self._put(Hint(Path(src), event.is_directory, gone=True))
            dest = Path(os.fsdecode(event.dest_path))
            self._put(Hint(dest, event.is_directory, heard_at=heard_at))
            return
        gone = event.event_type == EVENT_TYPE_DELETED
        self._put(Hint(Path(src), event.is_directory, gone, heard_at))


def _unnamed(path: str) -> bool:
    """An ``O_TMPFILE`` file's pseudo-name (``#`` and its inode number): its writes and
    close are reported under it before and after it is linked into the folder."""
    name = path.rpartition("/")[2]
    return name[:1] == "#" and name[1:].isdigit()


LEFT = {  # what a watch left behind means, at a stop or a reload (scan21)
    "stop": "left behind: nothing is lost, the next start rescans the inboxes",
    "reload": "left behind: the new watches run and every inbox is rescanned; nothing is"
    " lost (it ends when its look does, or at the next restart)",
}


class Watcher:
    """One watchdog observer per inbox, started and stopped together.

    ``native`` makes the platform observer (by default inotify, telling us when the
    kernel refuses a watch); a test hands in one that fails as inotify can.
    """

    def __init__(
        self,
        inboxes: tuple[Inbox, ...],
        put: Callable[[Hint], None],
        native: Callable[[], BaseObserver] | None = None,
        on_change: Callable[[dict[str, bool]], None] | None = None,
        on_limit: Callable[[], None] | None = None,
        on_polling: Callable[[], None] | None = None,
    ) -> None:
        """``on_change`` hears ``watched()`` once watching starts and whenever an inbox
        goes missing or comes back (the metrics gauge); ``on_limit`` is called (from a
        watch thread) when an inbox's watch reached the kernel's limit: ``revive()``
        then polls that inbox. ``on_polling`` is called (from a watch thread) when a
        polled inbox's first snapshot is taken, in the background: a file that came
        before it is in it, unheard, and only a scan made after it finds that file."""
        self._inboxes = inboxes
        self._on_change = on_change
        self._handlers = {
            "native": _Recorder(put, clocked=True),
            "poll": _Recorder(put, clocked=False),
        }
        self._native = native
        self._observers: list[BaseObserver] = []
        self._folders: list[tuple[int, int] | None] = []  # each inbox's (device, inode)
        self._missing: set[int] = set()  # inboxes reported gone
        self._on_limit = on_limit
        self._on_polling = on_polling
        self._limited: dict[int, OSError] = {}  # inboxes refused a watch while running
        self._lock = threading.Lock()
        self._stopper: threading.Thread | None = None  # once stopping

    def start(self) -> None:
        mounts = mountinfo()
        for inbox in self._inboxes:
            mode, why = watch_mode(inbox, filesystem_type(inbox.path, mounts))
            self._folders.append(_folder_id(inbox.path))
            try:
                self._observers.append(self._observe(inbox, mode, why))
            except OSError as exc:
                self.stop()
                raise SetupError(
                    f"cannot watch inbox {inbox.path}: {exc.strerror or exc}"
                ) from None
        self._changed()

    def _observe(self, inbox: Inbox, mode: str, why: str) -> BaseObserver:
        if mode == "native":
            index = next(i for i, box in enumerate(self._inboxes) if box is inbox)
            made = self._native or (lambda: inotify.observer(lambda exc: self._refused(index, exc)))
            try:
                return self._start(inbox, made(), mode, why)
            except OSError as exc:
                if exc.errno not in inotify.LIMITS:
                    raise
                inotify.limit_reached(inbox, exc)
        return self._poll(inbox, "inotify limit reached" if mode == "native" else why)

    def _poll(self, inbox: Inbox, why: str) -> BaseObserver:
        """A polling watch that follows no link, as ``scan`` follows none. review20:
        watchdog's snapshot follows them (``os.stat``) and keeps no record of the folders
        it has been in: two links to ``.`` in a recursive inbox made a snapshot of 2^40
        paths. Its first snapshot is taken in the background (watchstop20): the inbox
        is "watching" once it is; a folder that cannot be listed fails here and now (as
        far as ``listable`` is told in time: scan21)."""
        listable(inbox.path)
        observer = PolledObserver(inbox.poll_seconds)
        return self._start(inbox, observer, "poll", why)

    def _refused(self, index: int, exc: OSError) -> None:
        """A watch of inbox ``index`` was refused for want of watches (a watch thread)."""
        with self._lock:
            self._limited.setdefault(index, exc)
        if self._on_limit is not None:
            self._on_limit()

    def _start(self, inbox: Inbox, observer: BaseObserver, mode: str, why: str) -> BaseObserver:
        observer.name = f"dropscribe-watch-{inbox.name}"
        observer.schedule(
            self._handlers[mode], str(inbox.path), recursive=inbox.recursive, event_filter=EVENTS
        )
        if isinstance(observer, PolledObserver):
            observer.begin(lambda: self._polling(inbox, why), lambda exc: _failed(inbox, exc))
            return observer
        try:
            observer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                observer.stop()
            raise
        _watching_now(inbox, mode, why)
        return observer

    def _polling(self, inbox: Inbox, why: str) -> None:
        """A polled inbox's first snapshot is taken (its start thread)."""
        _watching_now(inbox, "poll", why)
        if self._on_polling is not None:
            self._on_polling()

    def revive(self) -> list[Inbox]:
        """Watch again each inbox whose watch has stopped; returns them, to be rescanned.

        A watch stops when its thread dies, and, silently, when its folder is removed
        (a sync tool recreating it, a disk unmounted under it): inotify's watch goes
        with the folder, and a new folder of the same name is not watched. A missing
        folder is reported once and watched again when it is back.
        """
        back = []
        with self._lock:
            limited, self._limited = self._limited, {}
        for index, inbox in enumerate(self._inboxes):
            folder = _folder_id(inbox.path)
            if folder is None:
                if index not in self._missing:
                    self._missing.add(index)
                    log.error(
                        "inbox.missing",
                        inbox=inbox.name,
                        path=str(inbox.path),
                        action="watching it again when it is back",
                    )
                    self._changed()
                continue
            observer = self._observers[index]
            if index in limited and not isinstance(observer, PolledObserver):
                inotify.limit_reached(inbox, limited[index])  # a folder made since is unwatched
                _stop(observer)
                with contextlib.suppress(OSError):  # gone: the next look watches it again
                    self._observers[index] = self._poll(inbox, "inotify limit reached")
                    back.append(inbox)
                continue
            if index in self._missing:
                why = "folder back"
            elif folder != self._folders[index]:
                why = "folder replaced"
            elif not _watching(observer):
                why = "watch stopped"  # its folder was removed (and made again), or it died
            else:
                continue
            log.warning(
                "inbox.watch_lost",
                inbox=inbox.name,
                path=str(inbox.path),
                why=why,
                action="restarting the watch and rescanning",
            )
            _stop(observer)
            mode = "poll" if isinstance(observer, PolledObserver) else "native"
            try:
                self._observers[index] = self._observe(inbox, mode, f"restarted: {why}")
            except OSError as exc:  # gone again already: the next look tries again
                log.error(
                    "inbox.watch_failed",
                    inbox=inbox.name,
                    path=str(inbox.path),
                    error=exc.strerror or str(exc),
                )
                continue
            if index in self._missing:
                self._missing.discard(index)
                self._changed()
            self._folders[index] = folder
            back.append(inbox)
        return back

    def watched(self) -> dict[str, bool]:
        """Each inbox's name: whether its folder is there (and so watched, or about to be
        watched again by ``revive``)."""
        return {inbox.name: i not in self._missing for i, inbox in enumerate(self._inboxes)}

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.watched())

    def stop(self, until: float | None = None, during: str = "stop") -> None:
        """Stop every watch, waiting for them until ``until`` (monotonic; None: until they
        end): ``stopping`` then ``stopped``."""
        self.stopping()
        self.stopped(until, during)

    def stopping(self) -> None:
        """Begin to stop every watch, on a thread of its own: a polled snapshot under way
        gives up at its next look (watchstop20: a stop waited for a whole snapshot of a
        share, 20 s). The daemon's stop goes on meanwhile."""
        observers, self._observers = list(self._observers), []
        if self._stopper is None:
            self._stopper = stop_all(observers)

    def stopped(self, until: float | None = None, during: str = "stop") -> None:
        """Wait for the watches' stop until ``until``: one still in a look then (a server
        that does not answer) is left behind, at a stop or a reload (``during``)."""
        stopper = self._stopper
        if stopper is None:
            return
        stopper.join(None if until is None else max(0.0, until - time.monotonic()))
        if stopper.is_alive():
            log.warning(
                "watch.stop_late",
                inboxes=[inbox.name for inbox in self._inboxes],
                during=during,
                action=LEFT[during],
            )


def _stop(observer: BaseObserver) -> None:
    with contextlib.suppress(Exception):
        observer.stop()
        observer.join(5.0)


def _watching_now(inbox: Inbox, mode: str, why: str) -> None:
    log.info(
        "inbox.watching",
        inbox=inbox.name,
        path=str(inbox.path),
        recursive=inbox.recursive,
        mode=mode,
        why=why,
    )


def _failed(inbox: Inbox, exc: BaseException) -> None:
    """A polled inbox's first snapshot failed (its start thread): the health check's
    next look watches it again."""
    error = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    log.error("inbox.watch_failed", inbox=inbox.name, path=str(inbox.path), error=error)


def _watching(observer: BaseObserver) -> bool:
    """The observer and its emitter threads run (watchdog stops an inotify emitter
    when the watched folder itself is deleted), or its first snapshot is being taken."""
    if isinstance(observer, PolledObserver) and observer.starting():
        return True
    emitters = observer.emitters
    return observer.is_alive() and bool(emitters) and all(e.is_alive() for e in emitters)


def _folder_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the folder at ``path``; None if there is no folder there."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None

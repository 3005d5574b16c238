"""The watchdog adapter (the folder scans: walk.py).

Handlers only record a hint and return; the service decides what a hint means.
Scans walk an inbox for files that arrived while nobody was watching.

ready22: watchdog adds a recursive inbox's watches as its observer starts, walking every
folder, on the caller's thread: 100,000 folders held the main loop 17 s at each start
and reload (a stop, a reload and the files waited). ``begin`` checks what would keep an
inbox from being watched, here and now, and adds the watches on a thread of its own; a
stop gives the adding up at its next folder. A file made in a folder before its watch is
added is heard by no one: the scans wait until the watches are added (``adding``).
"""

from __future__ import annotations

import contextlib
import stat
import threading
import time
import warnings
from typing import TYPE_CHECKING

import structlog

from dropscribe.errors import SetupError
from dropscribe.ingest import native as inotify
from dropscribe.ingest import walk
from dropscribe.ingest.hints import EVENTS, Hint, Recorder
from dropscribe.ingest.polling import (  # filesystem_type, watch_mode: theirs too
    PolledObserver,
    filesystem_type,
    listable,
    mountinfo,
    stop_all,
    watch_mode,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from watchdog.observers.api import BaseObserver

    from dropscribe.vocab.config import Inbox

__all__ = ["Hint", "Watcher", "filesystem_type", "scan", "watch_mode"]

log = structlog.get_logger("dropscribe.watcher")

scan = walk.scan  # the intake's, through here (a test puts a counting one in its place)

# watchdog warns when a folder created in a burst (mkdir -p a/b/c) gets its watch
# added twice; the second add just replaces the first. Harmless, and a warning
# raised inside its reader thread must never be able to end that thread.
warnings.filterwarnings(
    "ignore", message="Callback with id .* already exists", category=RuntimeWarning
)


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
            "native": Recorder(put, clocked=True),
            "poll": Recorder(put, clocked=False),
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
        self._adder: threading.Thread | None = None  # adds the native watches (ready22)
        self._quit = threading.Event()  # stopping: the watches being added are given up
        self._whys: dict[int, str] = {}  # why each native inbox is (its inbox.watching)

    def start(self) -> None:
        """Watch every inbox, every watch added before it returns."""
        self.begin()
        self.added(None)

    def begin(self) -> None:
        """Watch every inbox: what keeps one from being watched is raised here (a
        SetupError), the native watches are added on a thread of their own."""
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
        pending = [(i, o) for i, o in enumerate(self._observers) if _unstarted(o)]
        self._adder = threading.Thread(
            target=self._add, args=(pending,), name="dropscribe-watch-add", daemon=True
        )
        self._adder.start()

    def adding(self) -> bool:
        """The native watches are still being added (a file made meanwhile may be unheard:
        a scan is walked once they are)."""
        return self._adder is not None and self._adder.is_alive()

    def added(self, timeout: float | None) -> bool:
        """Wait ``timeout`` seconds at most (None: no limit) for the watches to be added."""
        if self._adder is not None:
            self._adder.join(timeout)
        return not self.adding()

    def _add(self, pending: list[tuple[int, BaseObserver]]) -> None:
        """The native observers started, inbox after inbox (the adding thread)."""
        for index, observer in pending:
            if self._quit.is_set():
                return
            inbox = self._inboxes[index]
            try:
                started = self._launch(index, observer)
            except inotify.CancelledError:
                return
            except Exception as exc:  # reported; the health check's next look tries again
                if not self._quit.is_set():
                    _failed(inbox, exc)
                continue
            with self._lock:
                if not self._quit.is_set():
                    self._observers[index] = started
                    continue
            _stop(started)  # the stop took its list before this one was made
            return

    def _observe(self, inbox: Inbox, mode: str, why: str) -> BaseObserver:
        """A native observer, its watches not added yet (``_launch``: a folder that cannot
        be listed fails here and now, as inotify would); or a polled one."""
        if mode == "native":
            listable(inbox.path)
            index = next(i for i, box in enumerate(self._inboxes) if box is inbox)
            made = self._native or (
                lambda: inotify.observer(lambda exc: self._refused(index, exc), self._quit)
            )
            self._whys[index] = why
            try:  # watchdog makes its inotify instance as the first watch is scheduled
                return self._schedule(inbox, made(), mode)
            except OSError as exc:
                if exc.errno not in inotify.LIMITS:
                    raise
                inotify.limit_reached(inbox, exc)
                why = "inotify limit reached"
        return self._poll(inbox, why)

    def _launch(self, index: int, observer: BaseObserver) -> BaseObserver:
        """Start a native observer (watchdog adds every folder's watch now); one refused
        for want of watches becomes a polled one."""
        inbox = self._inboxes[index]
        try:
            observer.start()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                observer.stop()
            if not isinstance(exc, OSError) or exc.errno not in inotify.LIMITS:
                raise
            inotify.limit_reached(inbox, exc)
            return self._poll(inbox, "inotify limit reached")
        _watching_now(inbox, "native", self._whys.get(index, ""))
        return observer

    def _poll(self, inbox: Inbox, why: str) -> BaseObserver:
        """A polling watch that follows no link, as ``scan`` follows none. review20:
        watchdog's snapshot follows them (``os.stat``) and keeps no record of the folders
        it has been in: two links to ``.`` in a recursive inbox made a snapshot of 2^40
        paths. Its first snapshot is taken in the background (watchstop20): the inbox
        is "watching" once it is; a folder that cannot be listed fails here and now (as
        far as ``listable`` is told in time: scan21)."""
        listable(inbox.path)
        observer = self._schedule(inbox, PolledObserver(inbox.poll_seconds), "poll")
        assert isinstance(observer, PolledObserver)
        observer.begin(lambda: self._polling(inbox, why), lambda exc: _failed(inbox, exc))
        return observer

    def _refused(self, index: int, exc: OSError) -> None:
        """A watch of inbox ``index`` was refused for want of watches (a watch thread)."""
        with self._lock:
            self._limited.setdefault(index, exc)
        if self._on_limit is not None:
            self._on_limit()

    def _schedule(self, inbox: Inbox, observer: BaseObserver, mode: str) -> BaseObserver:
        observer.name = f"dropscribe-watch-{inbox.name}"
        observer.schedule(
            self._handlers[mode], str(inbox.path), recursive=inbox.recursive, event_filter=EVENTS
        )
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
        folder is reported once and watched again when it is back. Nothing while the
        watches are being added (the adding reports its own failures, looked at after).
        """
        back: list[Inbox] = []
        if self.adding():
            return back
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
                self._observers[index] = self._watch(index, mode, f"restarted: {why}")
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

    def _watch(self, index: int, mode: str, why: str) -> BaseObserver:
        """Inbox ``index`` watched again, here and now (the health check's)."""
        observer = self._observe(self._inboxes[index], mode, why)
        return self._launch(index, observer) if _unstarted(observer) else observer

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
        with self._lock:
            self._quit.set()  # the watches being added: given up at the next folder
            observers, self._observers = list(self._observers), []
        if self._stopper is None:
            self._stopper = stop_all(observers)

    def stopped(self, until: float | None = None, during: str = "stop") -> None:
        """Wait for the watches' stop until ``until``: one still in a look then (a server
        that does not answer) is left behind, at a stop or a reload (``during``)."""
        stopper = self._stopper
        if stopper is None:
            return
        for thread in (stopper, self._adder):
            if thread is not None:
                thread.join(None if until is None else max(0.0, until - time.monotonic()))
        if stopper.is_alive() or self.adding():
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


def _unstarted(observer: BaseObserver) -> bool:
    """A native observer whose watches are yet to be added (``_launch``)."""
    return not isinstance(observer, PolledObserver) and observer.ident is None


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

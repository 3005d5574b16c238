"""The native observer, made to say when the kernel refuses it a watch.

When a watch cannot be added for a folder made after the start (inotify's
``max_user_watches`` used up), watchdog logs a line and carries on with that folder
unwatched: its files would wait for the next rescan. Here every watch it adds goes
through an inotify instance of ours, which tells ``on_limit`` of a refusal for want
of watches (and still raises, as watchdog expects); the Watcher then polls that
inbox instead, and says so in ``inbox.watch_limit``. The same instance gives up the
adding of a recursive inbox's watches once ``quitting`` is set (ready22: watchdog adds
them as its observer starts, walking every folder; 100,000 folders took 17 s).
"""

from __future__ import annotations

import errno
import inspect
import sys
import threading
from typing import TYPE_CHECKING, Any

import structlog
from watchdog.observers import Observer

if TYPE_CHECKING:
    from collections.abc import Callable

    from watchdog.observers.api import BaseObserver

    from dropscribe.vocab.config import Inbox

log = structlog.get_logger("dropscribe.watcher")

LIMITS = frozenset({errno.ENOSPC, errno.EMFILE})  # out of watches, out of instances


class CancelledError(Exception):
    """The watches being added are given up (a stop, or a reload's): not an OSError,
    which watchdog would take for a folder gone and go on walking."""


def limit_reached(inbox: Inbox, exc: OSError) -> None:
    """Say that ``inbox`` is polled from now on, and which sysctl to raise."""
    log.error(
        "inbox.watch_limit",
        inbox=inbox.name,
        path=str(inbox.path),
        error=exc.strerror,
        action="polling this inbox instead",
        fix="raise fs.inotify.max_user_watches and fs.inotify.max_user_instances,"
        " e.g. sysctl fs.inotify.max_user_watches=524288",
    )


def observer(
    on_limit: Callable[[OSError], None], quitting: threading.Event | None = None
) -> BaseObserver:
    """The platform's observer; on Linux one that calls ``on_limit`` when a watch is
    refused for want of watches, and whose start (every folder's watch added) raises
    ``CancelledError`` at its next folder once ``quitting`` is set."""
    if sys.platform != "linux" or not _HOOKED:
        return Observer()
    return _Observer(on_limit, quitting or threading.Event())


if sys.platform == "linux":
    from watchdog.observers.inotify import InotifyEmitter, InotifyObserver
    from watchdog.observers.inotify_c import InotifyFD

    # watchdog 7 hands each emitter its observer's inotify instance; older ones do not
    _HOOKED = "inotify_fd" in inspect.signature(InotifyEmitter.__init__).parameters

    class _Instance(InotifyFD):
        def __init__(self, on_limit: Callable[[OSError], None], quitting: threading.Event) -> None:
            super().__init__()
            self._on_limit = on_limit
            self._quit = quitting
            self.starter: int | None = None  # the thread adding the start's watches

        def add_callback(self, *args: Any, **kwargs: Any) -> Any:
            # the start's adding only: watchdog's reader thread adding a new folder's
            # watch would end with the exception
            if self._quit.is_set() and threading.get_ident() == self.starter:
                raise CancelledError
            try:
                return super().add_callback(*args, **kwargs)
            except OSError as exc:
                if exc.errno in LIMITS:
                    self._on_limit(exc)
                raise

    class _Observer(InotifyObserver):
        def __init__(self, on_limit: Callable[[OSError], None], quitting: threading.Event) -> None:
            super().__init__()
            self._on_limit = on_limit
            self._quit = quitting

        def schedule(self, *args: Any, **kwargs: Any) -> Any:
            with self._lock:  # as InotifyObserver makes its instance, but ours
                if self._inotify_fd is None:
                    instance = _Instance(self._on_limit, self._quit)
                    instance.start()
                    self._inotify_fd = instance
                    self._emitter_kwargs["inotify_fd"] = instance
                return super().schedule(*args, **kwargs)

        def start(self) -> None:
            if isinstance(self._inotify_fd, _Instance):
                self._inotify_fd.starter = threading.get_ident()
            super().start()

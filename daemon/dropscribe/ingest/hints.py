"""Watch events reduced to hints (the watcher's handlers: they only record and return)."""

from __future__ import annotations

import os
import time
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

from dropscribe.outputs.sidecar import TEMP_SUFFIX

if TYPE_CHECKING:
    from collections.abc import Callable

log = structlog.get_logger("dropscribe.watcher")


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


class Recorder(FileSystemEventHandler):
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

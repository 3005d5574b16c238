"""The scans of the inboxes, walked a slice at a time (scan21).

A scan walked an inbox whole on the main loop's thread: 100,000 recordings took it 30 s
on this machine (a share whose every stat is slow, minutes), and all that time a SIGTERM
was not acted on (the promise: shutdown_grace plus 1 s), a SIGHUP waited and so did the
files that arrived. Here a scan asked for is queued and walked in slices the loop bounds
by its clock: between two, it hears a stop, a reload and the watches. A folder is listed
as its names come (``os.scandir``), not whole before the first is given: a folder of
200,000 names on a share is seconds of listing. Nothing is lost by cutting a scan short:
the ledger says what is done, and the next start (or scan) walks every inbox again.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from dropscribe.config.rules import JUNK_FOLDERS

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

    from dropscribe.vocab.config import Inbox

log = structlog.get_logger("dropscribe.watcher")

SLOW = 10.0  # seconds: a full scan this long is said at info whenever it ends


def scan(top: Path, recursive: bool) -> Iterator[Path | None]:
    """Every file under ``top``, skipping hidden and junk folders and not following links;
    each folder read as its names come, its subfolders after its files. None for each name
    that is not a file and after each folder (review21: a slice's clock is read there
    too, ``Walk.files``)."""
    folders = [str(top)]
    while folders:
        below = yield from _folder(folders.pop(), recursive)
        folders.extend(reversed(below))
        yield None  # a folder listed (maybe empty): the clock read there too


def _folder(folder: str, recursive: bool) -> Generator[Path | None, None, list[str]]:
    """The files of one folder; returns the subfolders to walk (as ``os.walk`` does: a
    link to a folder is neither walked nor given as a file)."""
    below: list[str] = []
    try:
        listing = os.scandir(folder)
    except OSError as exc:
        _unreadable(exc)
        return below
    with listing:
        while True:
            try:
                entry = next(listing)
            except StopIteration:
                break
            except OSError as exc:
                _unreadable(exc)
                break
            if not _is_dir(entry):
                yield Path(entry.path)
                continue
            if recursive and _walked(entry):
                below.append(entry.path)
            yield None
    return below


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _walked(entry: os.DirEntry[str]) -> bool:
    """A subfolder the scan goes into: not hidden, not junk, not a link."""
    name = entry.name
    return not name.startswith(".") and name not in JUNK_FOLDERS and not entry.is_symlink()


def _unreadable(exc: OSError) -> None:
    log.warning("scan.unreadable", path=str(exc.filename), error=exc.strerror)


class Walk:
    """One scan asked for: folders (each with its inbox) walked in turn. ``full``: every
    inbox (the sweep follows it); ``whole``: inboxes, not a folder in one; ``afters``: what
    its owner read for it as it began (the pending after:s, for a walk of whole inboxes)."""

    def __init__(
        self, parts: list[tuple[Inbox, Path]], *, full: bool, lister: Any, whole: bool = True
    ) -> None:
        self.parts = deque(parts)
        self.inboxes = tuple(parts)  # all of them, walked or not
        self.full = full
        self.whole = whole
        self.began: float | None = None  # the clock when its first slice began
        self.found = 0
        self.afters: Any = None
        self._lister: Callable[[Path, bool], Iterator[Path | None]] = lister
        self._files: Iterator[Path | None] | None = None  # the first part's walk, under way

    @property
    def done(self) -> bool:
        return not self.parts

    def files(self, clock: Callable[[], float], until: float) -> Iterator[tuple[Inbox, Path]]:
        """The next files, each with its inbox, until ``clock()`` reaches ``until`` (a name
        at least) or the walk is done; the next call goes on where this one stopped."""
        if self.began is None:
            self.began = clock()
        while self.parts:
            inbox, top = self.parts[0]
            if self._files is None:
                self._files = self._lister(top, inbox.recursive)
            for path in self._files:
                if path is not None:  # else a folder: nothing to give, the clock read
                    self.found += 1
                    yield inbox, path
                if clock() >= until:
                    return
            self._files = None
            self.parts.popleft()

    def close(self) -> None:
        """Given up: the folder held open is closed."""
        if self._files is not None and hasattr(self._files, "close"):
            self._files.close()
        self._files = None
        self.parts.clear()


class Walks:
    """The scans asked for, in order; a folder a watch heard of comes first (a scan of a
    huge inbox under way does not hold it), and a scan not yet begun is not asked twice.
    ready22: no scan of whole inboxes is walked while ``held()`` (the watches are being
    added: a file made before its folder's watch is found by a scan begun after)."""

    def __init__(self, lister: Callable[[Path, bool], Iterator[Path | None]]) -> None:
        self._lister = lister
        self._queue: deque[Walk] = deque()
        self._told = False  # a full scan's end said since the start or the last reload
        self.fulls = 0  # full scans done
        self.held: Callable[[], bool] = lambda: False

    def __bool__(self) -> bool:
        return bool(self._queue)

    def __len__(self) -> int:
        return len(self._queue)

    def every(self, inboxes: tuple[Inbox, ...]) -> None:
        """A full scan: every inbox, then the sweep."""
        if not any(walk.full and walk.began is None for walk in self._queue):
            parts = [(inbox, inbox.path) for inbox in inboxes]
            self._queue.append(Walk(parts, full=True, lister=self._lister))

    def inbox(self, inbox: Inbox) -> None:
        """One inbox (its watch restarted)."""
        waiting = (p for walk in self._queue if walk.began is None for p in walk.parts)
        if (inbox, inbox.path) not in waiting:
            self._queue.append(Walk([(inbox, inbox.path)], full=False, lister=self._lister))

    def folder(self, inbox: Inbox, folder: Path) -> None:
        """A folder a watch heard of (made, or moved in), before the rest."""
        walk = Walk([(inbox, folder)], full=False, lister=self._lister, whole=False)
        self._queue.appendleft(walk)

    def first(self) -> Walk | None:
        """The scan to walk now, if any."""
        walk = self._queue[0] if self._queue else None
        return None if walk is not None and walk.whole and self.held() else walk

    def scanning(self) -> int | None:
        """The files found so far by the full scan under way (None: none is)."""
        return next((w.found for w in self._queue if w.full and w.began is not None), None)

    def finished(self, now: float) -> None:
        """The first scan is done: said (``scan.finished``) at info for the first full
        scan since the start or a reload, and for one that took ``SLOW`` seconds or more;
        at debug else (the hourly rescan of a small inbox is no news)."""
        walk = self._queue.popleft()
        took = now - (now if walk.began is None else walk.began)
        said = log.info if walk.full and (not self._told or took >= SLOW) else log.debug
        self._told = self._told or walk.full
        self.fulls += walk.full
        said(
            "scan.finished",
            inboxes=sorted({inbox.name for inbox, _ in walk.inboxes}),
            full=walk.full,
            files=walk.found,
            seconds=round(took, 2),
        )

    def drop(self) -> None:
        """Every scan given up (a reload asks for its own)."""
        self._told = False
        while self._queue:
            self._queue.popleft().close()

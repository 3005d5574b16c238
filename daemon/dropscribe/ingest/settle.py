"""Pure: observations of files over time -> the files that stopped changing.

Watch events are hints, never truth. A file is released only after its size and
mtime have stayed the same, with no write event for it, for its settle time.
The tracker does no I/O: the caller stats files and passes the results in,
together with the clock. Only files whose quiet period has run out need a new
look (``due``), so the cost of a tick does not grow with the number of files
still settling.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class Stat:
    size: int
    mtime_ns: int


@dataclass
class _Entry:
    settle_seconds: float
    stat: Stat
    quiet_since: float
    scheduled: float = -1.0  # the deadline of its one live item in the heap

    @property
    def deadline(self) -> float:
        return self.quiet_since + self.settle_seconds


class SettleTracker:
    """Remembers candidate files and says which have been quiet long enough.

    Deadlines sit in a heap, so asking what is due, or when the next file will be,
    costs O(log n), not O(n). A file has one item in it however often it is written
    to: a later deadline is only noted on the file, and its item moves when it
    surfaces. So memory grows with the files, not with their write events (a file
    written a byte at a time would otherwise add an item per byte).
    """

    def __init__(self) -> None:
        self._entries: dict[Path, _Entry] = {}
        self._heap: list[tuple[float, int, Path]] = []
        self._counter = itertools.count()  # tie-breaker: paths never get compared

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def _schedule(self, path: Path, entry: _Entry) -> None:
        """Make sure the heap holds the file's deadline, or an earlier one that will
        move it along when it surfaces."""
        if 0 <= entry.scheduled <= entry.deadline:
            return
        entry.scheduled = entry.deadline
        heapq.heappush(self._heap, (entry.scheduled, next(self._counter), path))

    def touch(self, path: Path, stat: Stat, now: float, settle_seconds: float) -> bool:
        """A sighting or a write event: the quiet period (re)starts at ``now``. True if new."""
        entry = self._entries.get(path)
        if entry is None:
            entry = self._entries[path] = _Entry(settle_seconds, stat, now)
            self._schedule(path, entry)
            return True
        entry.quiet_since = max(entry.quiet_since, now)
        entry.settle_seconds = settle_seconds
        self._schedule(path, entry)
        return False

    def forget(self, path: Path) -> None:
        self._entries.pop(path, None)

    def heap_size(self) -> int:
        """Items in the deadline heap (for tests of its bound)."""
        return len(self._heap)

    def _live_top(self) -> tuple[float, Path] | None:
        """The earliest heap item that still matches its entry; drops stale ones and
        moves those whose file's deadline was put off meanwhile."""
        while self._heap:
            deadline, _, path = self._heap[0]
            entry = self._entries.get(path)
            if entry is not None and entry.scheduled == deadline:
                if entry.deadline == deadline:
                    return deadline, path
                entry.scheduled = entry.deadline
                heapq.heapreplace(self._heap, (entry.scheduled, next(self._counter), path))
                continue
            heapq.heappop(self._heap)
        return None

    def due(self, now: float) -> list[Path]:
        """Files whose quiet period has run out: stat them and pass the result to ``observe``."""
        out = []
        while (top := self._live_top()) is not None and top[0] <= now:
            heapq.heappop(self._heap)
            self._entries[top[1]].scheduled = -1.0  # out of the heap until scheduled again
            out.append(top[1])
        return out

    def observe(self, path: Path, stat: Stat | None, now: float) -> bool:
        """Compare a fresh stat with the last one; True when the file is released.

        A changed stat restarts the quiet period; ``None`` (the file vanished) drops it.
        """
        entry = self._entries.get(path)
        if entry is None:
            return False
        if stat is None:
            del self._entries[path]
            return False
        if stat != entry.stat:
            entry.stat = stat
            entry.quiet_since = now
            self._schedule(path, entry)
            return False
        if now - entry.quiet_since >= entry.settle_seconds:
            del self._entries[path]
            return True
        self._schedule(path, entry)  # asked too early: keep its place
        return False

    def next_deadline(self, now: float) -> float | None:
        """Seconds until the earliest entry is due (for sleeping precisely)."""
        top = self._live_top()
        return None if top is None else max(0.0, top[0] - now)

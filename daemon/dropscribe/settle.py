"""Pure: observations of files over time -> the files that stopped changing.

Watch events are hints, never truth. A file is released only after its size and
mtime have stayed the same, with no write event for it, for its settle time.
The tracker does no I/O: the caller stats files and passes the results in,
together with the clock.
"""

from __future__ import annotations

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
    stat: Stat | None
    quiet_since: float


class SettleTracker:
    """Remembers candidate files and says which have been quiet long enough."""

    def __init__(self) -> None:
        self._entries: dict[Path, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def paths(self) -> list[Path]:
        return list(self._entries)

    def touch(self, path: Path, now: float, settle_seconds: float) -> bool:
        """A write event (or a first sighting): restart the quiet period. True if new."""
        entry = self._entries.get(path)
        if entry is None:
            self._entries[path] = _Entry(settle_seconds, None, now)
            return True
        entry.quiet_since = now
        entry.settle_seconds = settle_seconds
        return False

    def forget(self, path: Path) -> None:
        self._entries.pop(path, None)

    def observe(self, path: Path, stat: Stat | None, now: float) -> bool:
        """Record a stat of a tracked file; True when it is settled and released.

        ``stat`` is None when the file has vanished: it is dropped from tracking.
        """
        entry = self._entries.get(path)
        if entry is None:
            return False
        if stat is None:
            del self._entries[path]
            return False
        if entry.stat is None:
            entry.stat = stat  # first look: quiet since the touch (or the backdated scan)
        elif stat != entry.stat:
            entry.stat = stat
            entry.quiet_since = now
        if now - entry.quiet_since >= entry.settle_seconds:
            del self._entries[path]
            return True
        return False

    def next_deadline(self, now: float) -> float | None:
        """Seconds until the earliest entry could settle (for sleeping precisely)."""
        if not self._entries:
            return None
        return max(0.0, min(e.quiet_since + e.settle_seconds for e in self._entries.values()) - now)

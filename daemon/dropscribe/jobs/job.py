"""What a job is: the file it is for, how far it got, and how jobs ended."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.config.settings import Inbox
    from dropscribe.ingest.source import Opened


@dataclass(frozen=True)
class Item:
    """A settled file, queued for a worker."""

    inbox: Inbox = field(compare=False)
    path: Path


@dataclass
class Progress:
    """How far one job got, for deciding its outcome when it ends in an exception."""

    key: str | None = None
    identity: tuple[int, int, int] | None = None
    attempt: int = 0  # the attempt counted for it (0: none yet)
    stored: bool = False  # its transcript was had (from the ledger, or paid for)
    held: Opened | None = None  # the file as it was opened


@dataclass
class Tally:
    """How many jobs ended in each outcome."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped

    def add(self, outcome: str) -> None:
        with self.lock:
            setattr(self, outcome, getattr(self, outcome) + 1)

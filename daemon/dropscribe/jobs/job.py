"""What a job is: the file it is for, how far it got, and how jobs ended."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.ingest.source import Opened
    from dropscribe.vocab.config import Inbox
    from dropscribe.vocab.states import JobKey


class Outcome(StrEnum):
    """How a job ended (and the label of its metric)."""

    DONE = "done"  # its sidecars are written
    FAILED = "failed"  # it failed: retried later, or quarantined
    SKIPPED = "skipped"  # nothing to do: already done, not audio, vanished or changed


@dataclass(frozen=True)
class Item:
    """A settled file, queued for a worker."""

    inbox: Inbox = field(compare=False)
    path: Path


@dataclass
class Progress:
    """How far one job got, for deciding its outcome when it ends in an exception."""

    key: JobKey | None = None
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

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            match outcome:
                case Outcome.DONE:
                    self.done += 1
                case Outcome.FAILED:
                    self.failed += 1
                case Outcome.SKIPPED:
                    self.skipped += 1

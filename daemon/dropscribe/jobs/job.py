"""What a job is: the settled file it is for, what its way found out about it, and
how jobs ended.

"Job" means one thing here: one settled file's way from the inbox to its sidecars
(``Job``). What the ledger keys by ``JobKey`` (the content and the settings that
shape its transcript) is the *work* a job does; two jobs for the same content under
two names share that key, and so one upload.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.ingest.source import Opened
    from dropscribe.ledger.interface import Claim
    from dropscribe.vocab.config import Inbox
    from dropscribe.vocab.settings import FolderSettings
    from dropscribe.vocab.states import JobKey


class Outcome(StrEnum):
    """How a job ended (and the label of its metric)."""

    DONE = "done"  # its sidecars are written
    FAILED = "failed"  # it failed: retried later, or quarantined
    SKIPPED = "skipped"  # nothing to do: already done, not audio, vanished or changed
    UNREACHABLE = "unreachable"  # once: its endpoint was down; left where it was


@dataclass(frozen=True)
class SettledFile:
    """A file that stopped changing in an inbox, queued for a worker."""

    inbox: Inbox = field(compare=False)
    path: Path
    # routing34b: for route:'s deadline (jobs/routing.py): when it settled (wall clock),
    # how many of its inbox's files were queued behind it, and the workers of the host
    settled: float = field(default=0.0, compare=False)
    behind: int = field(default=0, compare=False)
    workers: int = field(default=0, compare=False)
    # wake15: a worker's answer, not the intake's: the file waits, to be tried at (epoch s)
    until: float | None = field(default=None, compare=False)


@dataclass
class Job:
    """One settled file on its way: each thing about it is found out once, on the way,
    and carried from there (also to how the job ends when it ends in an exception)."""

    file: SettledFile  # with its inbox as configured when the job began
    settings: FolderSettings  # the file's effective settings, worked out once
    held: Opened | None = None  # the file as it was opened
    key: JobKey | None = None  # its content and the settings that shape the transcript
    claim: Claim | None = None  # the ledger's claim on ``key``, while it is held
    attempt: int = 0  # the attempt counted for it (0: none yet)
    stored: bool = False  # its transcript was had (from the ledger, or paid for)
    after_pending: bool = False  # paras19: its after: failed; the hook waits until it works

    @property
    def path(self) -> Path:
        return self.file.path

    @property
    def inbox(self) -> Inbox:
        return self.file.inbox

    @property
    def identity(self) -> tuple[int, int, int] | None:
        """The file's (size, mtime, inode) as opened; None before it is."""
        return self.held.identity if self.held is not None else None

    def known(self) -> tuple[Opened, JobKey]:
        """The opened file and its key, for a step of the way that comes after both."""
        if self.held is None or self.key is None:
            raise RuntimeError("a step of the job's way ran before its file was known")
        return self.held, self.key


@dataclass
class Tally:
    """How many jobs ended in each outcome."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    unreachable: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped + self.unreachable

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            match outcome:
                case Outcome.DONE:
                    self.done += 1
                case Outcome.FAILED:
                    self.failed += 1
                case Outcome.SKIPPED:
                    self.skipped += 1
                case Outcome.UNREACHABLE:
                    self.unreachable += 1

"""The ledger's seam: what the rest of the daemon asks of it, whatever keeps it.

``store.SqliteLedger`` keeps it in one SQLite file beside the daemon. Everything else
types against ``Ledger`` here, so another backend (a database several hosts share)
is one more implementation of these methods, not a change to the daemon.

Every write is durable when its method returns, except ``start_attempt``, ``begin``'s
counting of an attempt and ``file_done``, which may be queued: losing them in a crash
only means doing again what the ledger still keeps from being uploaded twice. A write
the ledger cannot take (a full disk, a database away) raises one of ``WRITE_FAILED``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dropscribe.errors import LedgerUnavailable
from dropscribe.vocab.states import FileState, JobKey, JobState

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from pathlib import Path


# The ground floor's names, importable from here while branches in flight still do so;
# import them from ``dropscribe.vocab.states``.
__all__ = [
    "WRITE_FAILED",
    "ChunkRow",
    "Claim",
    "FileRow",
    "FileState",
    "JobKey",
    "JobRow",
    "JobState",
    "Ledger",
]

# What any backend's write raises when the ledger cannot take it: SQLite's errors (a
# full state_dir: "database or disk is full"), a shared ledger's LedgerUnavailable. A
# caller holding something paid for keeps it, and says so (``ledger.write_failed``).
WRITE_FAILED: tuple[type[Exception], ...] = (sqlite3.Error, LedgerUnavailable)


@dataclass(frozen=True)
class FileRow:
    path: str
    inbox: str
    size: int
    mtime_ns: int
    inode: int
    fingerprint: str
    key: JobKey
    state: str
    formats: str
    outputs: str
    error: str | None
    updated: float


@dataclass(frozen=True)
class ChunkRow:
    idx: int
    start: float
    end: float
    cut: float
    pause: bool
    result: dict[str, Any] | None
    request_id: str | None


@dataclass(frozen=True)
class JobRow:
    key: JobKey
    state: str
    attempts: int
    last_error: str | None
    status: int | None
    request_id: str | None
    result: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Claim:
    """A job in this daemon's hands. ``token`` grows with every claim of a shared ledger
    (0 where no other host shares it): whoever holds the highest one may publish."""

    key: JobKey
    token: int = 0


class Ledger(Protocol):
    """Thread-safe; shared by a process's workers, and by the processes of one state_dir."""

    where: str  # where it is kept, for messages: a file, or a database's URL
    shared: bool  # other hosts use it too: claims, fencing, paths relative to inboxes

    def close(self) -> None: ...

    # claims: which daemon works on a job (within one host the caller's locks decide)
    def hold(self, key: JobKey, path: Path) -> AbstractContextManager[Claim]:
        """Claim ``key`` (for ``path``, as reports show it) while the block runs; raise
        ClaimedElsewhere if another host holds it, LedgerUnavailable if that cannot be
        known."""
        ...

    def confirm(self, claim: Claim) -> None:
        """Raise Fenced unless ``claim`` is still this daemon's (just before a sidecar
        gets its final name)."""
        ...

    # files: one path in an inbox, its identity, state and sidecars
    def file(self, path: Path) -> FileRow | None: ...

    def record_file(
        self,
        path: Path,
        inbox: str,
        stat: tuple[int, int, int],
        fingerprint: str,
        key: JobKey,
        state: FileState,
        error: str | None = None,
    ) -> None: ...

    def file_done(self, path: Path, formats: list[str], outputs: list[Path]) -> None: ...

    # jobs: one transcript (content plus the settings that shape it), its attempts
    def job(self, key: JobKey) -> JobRow | None: ...

    def start_attempt(
        self,
        key: JobKey,
        settings: dict[str, Any],
        attempt: int,
        state: JobState = JobState.UPLOADING,
    ) -> None: ...

    def begin(
        self,
        path: Path,
        inbox: str,
        stat: tuple[int, int, int],
        key: JobKey,
        settings: dict[str, Any],
    ) -> tuple[JobRow | None, int]: ...

    def job_failed(
        self,
        key: JobKey,
        error: str,
        status: int | None,
        request_id: str | None,
        state: JobState,
    ) -> None: ...

    def owner_of(self, sidecar: Path) -> str | None:
        """Who claimed ``sidecar`` (None: nobody yet)."""
        ...

    def finish(
        self,
        source: Path,
        done: tuple[JobKey, dict[str, Any], str | None] | None,
        choices: list[list[Path]],
        owner: str | None = None,
        claim: Claim | None = None,
    ) -> list[Path | None]:
        """Store a fresh transcript (``done``: key, result, request id), if any, and claim
        for each format the first of its ``choices`` that is unclaimed or already
        ``owner``'s, in the same transaction; None where others claimed them all. With
        ``claim``, raise Fenced (and change nothing) unless it is still this daemon's."""
        ...

    def forget_failure(self, source: Path, key: JobKey | None) -> None: ...

    # chunks: a long recording's plan and checkpoints
    def chunk_plan(self, key: JobKey) -> list[ChunkRow]: ...

    def save_plan(self, key: JobKey, spans: list[tuple[float, float, float, bool]]) -> None: ...

    def chunk_done(
        self, key: JobKey, idx: int, result: dict[str, Any], request_id: str | None
    ) -> None: ...

    def chunk_attempt(self, key: JobKey, settings: dict[str, Any]) -> int: ...

    # capabilities: what each (server, model) pair took or refused
    def capabilities(self, server: str, model: str) -> list[tuple[str, str, str]]: ...

    def record_capability(
        self, server: str, model: str, param: str, value: str, verdict: str, reason: str | None
    ) -> None: ...

    def capabilities_with(self, verdict: str) -> list[tuple[str, str, str, str, str | None]]: ...

    # reports
    def counts(self) -> dict[str, int]: ...

    def latest_failures(self, limit: int = 10) -> list[FileRow]: ...

    def unfinished(self, limit: int = 1000) -> list[FileRow]: ...

    def inbox_counts(self) -> dict[tuple[str, str], int]: ...

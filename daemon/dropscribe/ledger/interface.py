"""The ledger's seam: what the rest of the daemon asks of it, whatever keeps it.

``store.SqliteLedger`` keeps it in one SQLite file beside the daemon,
``postgres.PostgresLedger`` in a database several hosts share. Nobody else types
against a backend, nor against the whole ``Ledger``, but against the narrow role it
uses (below, each with its callers); a backend is one more implementation of them.

Every write is durable when its method returns, except ``start_attempt``, ``begin``'s
counting of an attempt and ``file_done``, which may be queued: losing them in a crash
only means doing again what the ledger still keeps from being uploaded twice.
Whatever fails in a backend (a full disk, a database away) leaves it as
``LedgerError`` (``errors.py``): callers catch that, never ``sqlite3`` or ``psycopg``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from dropscribe.errors import LedgerError
from dropscribe.ledger.afters import Afters
from dropscribe.ledger.heard import Heard
from dropscribe.ledger.owed import Owed
from dropscribe.ledger.sends import Sends
from dropscribe.ledger.spend import Spends
from dropscribe.ledger.waits import Waits
from dropscribe.vocab.states import FileState, JobKey, JobState

if TYPE_CHECKING:
    from collections.abc import Iterable
    from contextlib import AbstractContextManager
    from pathlib import Path

    from dropscribe.ledger.leases import ClaimRow, HostRow
    from dropscribe.ledger.owed import OwedHook


__all__ = [
    "WRITE_FAILED",
    "Attempts",
    "Capabilities",
    "CapabilityReport",
    "Checkpoints",
    "ChunkRow",
    "Claim",
    "Copying",
    "FileRow",
    "Hosts",
    "JobLedger",
    "JobRow",
    "Ledger",
    "Lookup",
    "Reports",
    "Retrying",
    "Sidecars",
    "UploadLedger",
    "Verdicts",
    "Waiting",
]

# What any backend's write raises when the ledger cannot take it (a full state_dir:
# "database or disk is full"; a shared ledger out of reach): LedgerError, whichever. A
# caller holding something paid for keeps it, and says so (``ledger.write_failed``).
WRITE_FAILED: tuple[type[Exception], ...] = (LedgerError,)


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
    next_try: float | None = None  # until16: when a waiting file is tried again (epoch s)


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


# ---------------------------------------------------------------- the roles
# Each caller types against the narrowest of these it uses. A method's text is written
# once, in the role that owns it; larger roles are unions of smaller ones.


class CapabilityReport(Protocol):
    """Every (server, model, param, value) with one verdict: the reports of limits.py,
    gone.py and lookout.py (``refusals``, ``gone_rows``, ``notices``)."""

    def capabilities_with(
        self, verdict: str, since: float = 0.0
    ) -> list[tuple[str, str, str, str, str | None]]:
        """Rows with ``verdict`` last said at or after ``since`` (epoch seconds)."""
        ...


class Capabilities(CapabilityReport, Protocol):
    """What each (server, model) pair took or refused: transcribe/limits.py, gone.py,
    lookout.py."""

    where: str  # where it is kept, for messages: a file, or a database's URL

    def capabilities(
        self, server: str, model: str, refused_since: float = 0.0
    ) -> list[tuple[str, str, str]]:
        """The pair's (param, value, verdict) rows, less refusals said before
        ``refused_since`` (epoch seconds): those have lapsed and are asked again."""
        ...

    def record_capability(
        self, server: str, model: str, param: str, value: str, verdict: str, reason: str | None
    ) -> None: ...


class Attempts(Protocol):
    """A job's attempts counted and its failures kept."""

    def start_attempt(
        self,
        key: JobKey,
        settings: dict[str, Any],
        attempt: int,
        state: JobState = JobState.UPLOADING,
    ) -> None: ...

    def job_failed(
        self,
        key: JobKey,
        error: str,
        status: int | None,
        request_id: str | None,
        state: JobState,
    ) -> None: ...


class UploadLedger(Attempts, Capabilities, Protocol):
    """What the uploader needs (transcribe/uploader.py)."""


class Lookup(Protocol):
    """One file's row: intake.py (is this very file done?)."""

    def file(self, path: Path) -> FileRow | None: ...


class Waiting(Lookup, Waits, Afters, Protocol):
    """One file's row, what its wait was for (bounds17), and whether its ``after:`` is
    pending (done17): intake.py."""


class Verdicts(Protocol):
    """A file's state and error, as a job ends: jobs/verdicts.py."""

    def record_file(
        self,
        path: Path,
        inbox: str,
        stat: tuple[int, int, int],
        fingerprint: str,
        key: JobKey,
        state: FileState,
        error: str | None = None,
        next_try: float | None = None,
    ) -> None:
        """The file's state and error; ``next_try``: the moment (epoch seconds) a waiting
        file is tried again, when it is known (until16)."""
        ...


class Sidecars(Verdicts, Protocol):
    """Transcripts stored and sidecar names claimed: outputs/publish.py."""

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

    def confirm(self, claim: Claim) -> None:
        """Raise Fenced unless ``claim`` is still this daemon's (just before a sidecar
        gets its final name)."""
        ...


class Stepping(Lookup, Capabilities, Sidecars, Protocol):
    """The steps after the transcript (steps/stepper.py): a done file's row and its
    stored transcript, the chat models' learned refusals, step sidecars claimed as the
    transcript's are (the steps' own rows are ``steprows.StepRows``)."""

    def job(self, key: JobKey) -> JobRow | None: ...


class Checkpoints(Protocol):
    """A long recording's plan and its finished chunks: jobs/chunked.py."""

    where: str

    def chunk_plan(self, key: JobKey) -> list[ChunkRow]: ...

    def save_plan(self, key: JobKey, spans: list[tuple[float, float, float, bool]]) -> None: ...

    def chunk_done(
        self, key: JobKey, idx: int, result: dict[str, Any], request_id: str | None
    ) -> None: ...

    def chunk_attempt(self, key: JobKey, settings: dict[str, Any]) -> int: ...

    def job_failed(
        self,
        key: JobKey,
        error: str,
        status: int | None,
        request_id: str | None,
        state: JobState,
    ) -> None: ...


class JobLedger(  # done17: Afters; hooks20: Owed
    UploadLedger, Lookup, Sidecars, Checkpoints, Sends, Spends, Heard, Waits, Afters, Owed, Protocol
):
    """What one file's way needs: jobs/runner.py (which hands the narrower roles to the
    uploader, the chunker, verdicts and publish), dispatch/host.py."""

    shared: bool  # other hosts use it too: claims, fencing, paths relative to inboxes

    # claims: which daemon works on a job (within one host the caller's locks decide)
    def hold(self, key: JobKey, path: Path) -> AbstractContextManager[Claim]:
        """Claim ``key`` (for ``path``, as reports show it) while the block runs; raise
        ClaimedElsewhere if another host holds it, LedgerUnavailable if that cannot be
        known."""
        ...

    def job(self, key: JobKey) -> JobRow | None: ...

    def begin(
        self,
        path: Path,
        inbox: str,
        stat: tuple[int, int, int],
        key: JobKey,
        settings: dict[str, Any],
    ) -> tuple[JobRow | None, int]: ...

    def file_done(
        self, path: Path, formats: list[str], outputs: list[Path], owed: OwedHook | None = None
    ) -> None:
        """The file done, with its sidecars; ``owed``: its hook, owed in the same write."""


class Closing(Protocol):
    def close(self) -> None: ...


class Reports(CapabilityReport, Lookup, Closing, Sends, Spends, Afters, Protocol):
    """What the commands read: status, explain, rehearse (commands/)."""

    where: str

    def job(self, key: JobKey) -> JobRow | None: ...

    def chunk_plan(self, key: JobKey) -> list[ChunkRow]: ...

    def counts(self) -> dict[str, int]: ...

    def unfinished(self, limit: int = 1000) -> list[FileRow]: ...

    def inbox_counts(self) -> dict[tuple[str, str], int]: ...


class Retrying(Closing, Protocol):
    """What ``dropscribe retry`` does: a quarantined recording tried afresh."""

    def forget_failure(self, source: Path, key: JobKey | None) -> None: ...


@runtime_checkable
class Hosts(Protocol):
    """Who shares a ledger and what each holds (a shared ledger only): status."""

    def hosts(self) -> list[HostRow]: ...

    def claims(self) -> list[ClaimRow]: ...


class Copying(Closing, Protocol):
    """A shared ledger taking a SQLite ledger's rows: ``ledger migrate``."""

    def portable(self, text: str) -> str: ...

    def copy_in(
        self, table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]
    ) -> int: ...


class Ledger(JobLedger, Reports, Retrying, Protocol):
    """The whole ledger, as opened: held only by the service, which hands out the roles.
    Thread-safe; shared by a process's workers, and by the processes of one state_dir."""

    def give_up_at(self, when: float) -> None:
        """From ``when`` (monotonic: a stop's grace over) no write waits for the ledger
        held elsewhere (grace18): ``LedgerGaveUp``, the job left for the next start."""
        ...

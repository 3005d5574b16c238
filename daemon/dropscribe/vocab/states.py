"""What a job is known by (``JobKey``) and where files and jobs stand (``FileState``,
``JobState``): the words the ledger keeps, the rules decide with and the runner moves."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class FileState(StrEnum):
    """Where one path in an inbox stands (``files.state``)."""

    UPLOADING = "uploading"  # its job is under way (or was, when the daemon stopped)
    DONE = "done"  # its sidecars are written
    ERROR = "error"  # the last try failed; it is tried again
    FAILED = "failed"  # quarantined: tried again only after ``dropscribe retry``


class JobState(StrEnum):
    """Where one transcript stands (``jobs.state``)."""

    UPLOADING = "uploading"
    RETRYING = "retrying"  # an attempt failed; another follows
    FAILED = "failed"  # no attempt is left
    RETRY = "retry"  # its attempts were reset by ``dropscribe retry``
    DONE = "done"  # the transcript is stored


@dataclass(frozen=True, slots=True)
class JobKey:
    """What a transcript is of: the content's fingerprint and the hash of the settings
    that shape it; with ``chunk``, one chunk of that job (its own attempts)."""

    digest: str
    shaping: str
    chunk: int | None = None

    def __str__(self) -> str:
        whole = f"{self.digest}:{self.shaping}"
        return whole if self.chunk is None else f"{whole}#{self.chunk:04d}"

    @classmethod
    def parse(cls, text: str) -> JobKey:
        """The key a ledger row or an error report holds, as ``str()`` wrote it."""
        whole, _, chunk = text.partition("#")
        digest, _, shaping = whole.partition(":")
        return cls(digest, shaping, int(chunk) if chunk else None)

    def of_chunk(self, idx: int) -> JobKey:
        return replace(self, chunk=idx)

    def chunk_range(self) -> tuple[str, str]:
        """The range [low, high) of this job's chunk keys as text (``key#...``): a range
        searches an index, where a LIKE (case-insensitive) reads every row."""
        return f"{self}#", f"{self}$"  # "$" follows "#": nothing sorts between the two

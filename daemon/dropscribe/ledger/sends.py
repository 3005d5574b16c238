"""Which endpoint each job was sent to, in the ``sends`` table (``schema.LAYOUT``): a row
per (job, endpoint), written before the first request of the job to that endpoint
(``sending``, committed before the request leaves) and ended once it answers (``done``,
or ``unusable`` with why). A row still ``sending`` when a job starts again is a request
that may have reached the endpoint before this host stopped (``jobs/cascade.py``).
Both backends read them here (``SendReads``) and write them with ``record_send``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.vocab.states import JobKey

SENDING = "sending"  # written before the request: it may have reached the endpoint
DONE = "done"  # the endpoint took the file
UNUSABLE = "unusable"  # passed over, with why (the file went on to the next)
FAILED = "failed"  # it answered with the file's failure (or nothing was sent)

RECORD = """
INSERT INTO sends (key, endpoint, model, path, state, reason, updated)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key, endpoint) DO UPDATE SET model = excluded.model, path = excluded.path,
    state = excluded.state, reason = excluded.reason, updated = excluded.updated
"""
COLUMNS = "endpoint, model, path, state, reason, updated"


@dataclass(frozen=True)
class SendRow:
    endpoint: str
    model: str
    path: str
    state: str
    reason: str | None
    updated: float


class Sends(Protocol):
    """What the cascade asks of the ledger."""

    def record_send(
        self, key: JobKey, endpoint: str, model: str, path: Path, state: str, reason: str | None
    ) -> None:
        """Upsert the row, committed when this returns."""

    def sends(self, key: JobKey | str) -> list[SendRow]: ...

    def recent_sends(self, limit: int = 10) -> list[SendRow]: ...


class SendReads:
    """The reads of ``sends`` for a backend with ``_rows`` and ``_shown``."""

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _shown(self, text: str) -> str:
        raise NotImplementedError

    def sends(self, key: JobKey | str) -> list[SendRow]:
        """The job's rows, oldest first."""
        sql = f"SELECT {COLUMNS} FROM sends WHERE key = ? ORDER BY updated, endpoint"  # noqa: S608
        return [self._row(row) for row in self._rows(sql, (str(key),))]

    def recent_sends(self, limit: int = 10) -> list[SendRow]:
        """The latest rows of endpoints passed over (``unusable``), newest first."""
        sql = f"SELECT {COLUMNS} FROM sends WHERE state = ? ORDER BY updated DESC LIMIT ?"  # noqa: S608
        return [self._row(row) for row in self._rows(sql, (UNUSABLE, limit))]

    def _row(self, row: tuple[Any, ...]) -> SendRow:
        endpoint, model, path, state, reason, updated = row
        shown = self._shown(str(path))
        return SendRow(str(endpoint), str(model), shown, str(state), reason, float(updated))

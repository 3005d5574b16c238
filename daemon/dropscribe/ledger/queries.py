"""The ledger's SQL, written once for both backends (``?`` placeholders; PostgreSQL's
driver is handed ``%s``), and the reads, which are the same statements on either.

A backend mixes in ``Reads`` and provides ``_rows``; a shared ledger also maps paths
between this host's and the stored form (``_stored``, ``_shown``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dropscribe import names
from dropscribe.ledger.interface import ChunkRow, FileRow, JobRow
from dropscribe.ledger.search import Searching
from dropscribe.vocab.states import JobKey
from dropscribe.vocab.waits import moment

if TYPE_CHECKING:
    from pathlib import Path

# next_try (until16): when a waiting file is tried again, or NULL (every other state)
UPSERT_FILE = """
INSERT INTO files (
    path, inbox, size, mtime_ns, inode, fingerprint, key, state, error, updated, next_try
)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (path) DO UPDATE SET
    inbox = excluded.inbox, size = excluded.size, mtime_ns = excluded.mtime_ns,
    inode = excluded.inode, fingerprint = excluded.fingerprint, key = excluded.key,
    state = excluded.state, error = excluded.error, updated = excluded.updated,
    next_try = excluded.next_try
"""
FILE_DONE = (
    "UPDATE files SET state = 'done', formats = ?, outputs = ?, error = NULL, updated = ?,"
    " next_try = NULL WHERE path = ?"
)
# A refusal holds for a day from the last time it was said: then the pair is asked
# again (one request), so that one odd answer (a proxy's, a server's mid-upgrade) does
# not downgrade it for good. A refusal said again starts its day anew.
REFUSAL_HOLDS_SECONDS = 86_400.0
# A refusal is not undone by a confirmation within its day (a request sent before it,
# answered after it), only by a refusal said again or a confirmation after its day
# (86400: REFUSAL_HOLDS_SECONDS, written out as the SQL is a constant).
RECORD_CAPABILITY = """
INSERT INTO capabilities (endpoint, model, param, value, verdict, reason, updated)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (endpoint, model, param, value) DO UPDATE SET verdict = excluded.verdict,
    reason = excluded.reason, updated = excluded.updated
WHERE capabilities.verdict != 'refused' OR excluded.verdict = 'refused'
    OR capabilities.updated < excluded.updated - 86400
"""
SELECT_JOB = (
    "SELECT key, state, attempts, last_error, status, request_id, result FROM jobs WHERE key = ?"
)
UPSERT_ATTEMPT = """
INSERT INTO jobs (key, fingerprint, settings, state, attempts, created, updated)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    state = excluded.state, attempts = excluded.attempts, updated = excluded.updated
"""
JOB_FAILED = (
    "UPDATE jobs SET state = ?, last_error = ?, status = ?, request_id = ?, updated = ?"
    " WHERE key = ?"
)
JOB_DONE = (
    "UPDATE jobs SET state = 'done', result = ?, request_id = ?, last_error = NULL,"
    " status = 200, updated = ? WHERE key = ?"
)
FORGET_FILE = "DELETE FROM files WHERE path = ? AND state = 'failed'"
FORGET_ATTEMPTS = (
    "UPDATE jobs SET state = 'retry', attempts = 0"
    " WHERE (key = ? OR (key >= ? AND key < ?)) AND state != 'done'"
)
CHUNK_DONE = "UPDATE chunks SET result = ?, request_id = ? WHERE key = ? AND idx = ?"
SAVE_CHUNK = 'INSERT INTO chunks (key, idx, start, "end", cut, pause) VALUES (?, ?, ?, ?, ?, ?)'


def attempt_args(
    key: JobKey, settings: dict[str, Any], state: str, attempt: int, now: float
) -> tuple[Any, ...]:
    """UPSERT_ATTEMPT's arguments."""
    return (str(key), key.digest, json.dumps(settings, sort_keys=True), state, attempt, now, now)


class Reads(Searching):
    """The ledger's reads (``interface.Ledger``; ``search.Searching``'s ``search`` too),
    for a backend with ``_rows``."""

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _stored(self, path: Path | str) -> str:
        """A path as the ledger keeps it."""
        return names.text(path)

    def _shown(self, text: str) -> str:
        """A kept path as this host names it."""
        return text

    def file(self, path: Path) -> FileRow | None:
        rows = self._rows("SELECT * FROM files WHERE path = ?", (self._stored(path),))
        return self._file_row(rows[0]) if rows else None

    def job(self, key: JobKey) -> JobRow | None:
        rows = self._rows(SELECT_JOB, (str(key),))
        return job_row(rows[0]) if rows else None

    def owner_of(self, sidecar: Path) -> str | None:
        rows = self._rows("SELECT source FROM sidecars WHERE path = ?", (self._stored(sidecar),))
        return self._shown(str(rows[0][0])) if rows else None

    def chunk_plan(self, key: JobKey) -> list[ChunkRow]:
        """The stored chunks of a job, in order (empty when none was planned)."""
        rows = self._rows(
            'SELECT idx, start, "end", cut, pause, result, request_id FROM chunks'
            " WHERE key = ? ORDER BY idx",
            (str(key),),
        )
        return [
            ChunkRow(idx, start, end, cut, bool(pause), json.loads(res) if res else None, rid)
            for idx, start, end, cut, pause, res, rid in rows
        ]

    def capabilities(
        self, server: str, model: str, refused_since: float = 0.0
    ) -> list[tuple[str, str, str]]:
        rows = self._rows(
            "SELECT param, value, verdict FROM capabilities WHERE endpoint = ? AND model = ?"
            " AND (verdict != 'refused' OR updated >= ?)",
            (server, model, refused_since),
        )
        return [(str(p), str(v), str(verdict)) for p, v, verdict in rows]

    def capabilities_with(
        self, verdict: str, since: float = 0.0
    ) -> list[tuple[str, str, str, str, str | None]]:
        rows = self._rows(
            "SELECT endpoint, model, param, value, reason FROM capabilities"
            " WHERE verdict = ? AND updated >= ? ORDER BY endpoint, model, param, value",
            (verdict, since),
        )
        return [(str(e), str(m), str(p), str(v), r) for e, m, p, v, r in rows]

    def counts(self) -> dict[str, int]:
        rows = self._rows("SELECT state, count(*) FROM files GROUP BY state")
        return {str(state): int(n) for state, n in rows}

    def unfinished(self, limit: int = 1000) -> list[FileRow]:
        """Files not done (waiting, in flight, failed), the latest first."""
        rows = self._rows(
            "SELECT * FROM files WHERE state != 'done' ORDER BY updated DESC LIMIT ?", (limit,)
        )
        return [self._file_row(row) for row in rows]

    def inbox_counts(self) -> dict[tuple[str, str], int]:
        """Files by (inbox, state)."""
        rows = self._rows("SELECT inbox, state, count(*) FROM files GROUP BY inbox, state")
        return {(str(inbox), str(state)): int(n) for inbox, state, n in rows}

    def _file_row(self, row: tuple[Any, ...]) -> FileRow:
        return file_row(row)


def file_row(row: tuple[Any, ...]) -> FileRow:
    path, inbox, size, mtime_ns, inode, fingerprint, key, *rest = row
    if len(rest) == 6:  # state, formats, outputs, error, updated, next_try
        rest[5] = moment(rest[5])
    return FileRow(path, inbox, size, mtime_ns, inode, fingerprint, JobKey.parse(key), *rest)


def job_row(row: tuple[Any, ...]) -> JobRow:
    key, state, attempts, last_error, status, request_id, result = row
    parsed = json.loads(result) if result else None
    return JobRow(JobKey.parse(key), state, attempts, last_error, status, request_id, parsed)


def for_psycopg(sql: str) -> str:
    """A statement of this module with psycopg's placeholders (``%s`` for ``?``)."""
    return sql.replace("?", "%s")

"""The ledger: what was seen, uploaded, done and failed, in SQLite (WAL).

Two kinds of row. A *job* is one transcript: content fingerprint plus the
settings that shape it; it holds the transcript once done, so the same content
under another name, or a file renamed, needs no second upload. A *file* is one
path in an inbox and the sidecars written for it. A third table records which
source owns each sidecar path, so two sources never overwrite each other.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    settings    TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    status      INTEGER,
    request_id  TEXT,
    result      TEXT,
    created     REAL NOT NULL,
    updated     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    path        TEXT PRIMARY KEY,
    inbox       TEXT NOT NULL,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    inode       INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    key         TEXT NOT NULL,
    state       TEXT NOT NULL,
    formats     TEXT NOT NULL DEFAULT '',
    outputs     TEXT NOT NULL DEFAULT '[]',
    error       TEXT,
    updated     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_state ON files (state, updated);
CREATE TABLE IF NOT EXISTS sidecars (
    path   TEXT PRIMARY KEY,
    source TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class FileRow:
    path: str
    inbox: str
    size: int
    mtime_ns: int
    inode: int
    fingerprint: str
    key: str
    state: str
    formats: str
    outputs: str
    error: str | None
    updated: float


@dataclass(frozen=True)
class JobRow:
    key: str
    state: str
    attempts: int
    last_error: str | None
    status: int | None
    request_id: str | None
    result: dict[str, Any] | None


class Journal:
    """Thread-safe access to the ledger: one connection, one lock, short transactions."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ------------------------------------------------------------ files

    def file(self, path: Path) -> FileRow | None:
        rows = self._run("SELECT * FROM files WHERE path = ?", (str(path),))
        return FileRow(*rows[0]) if rows else None

    def record_file(
        self,
        path: Path,
        inbox: str,
        stat: tuple[int, int, int],
        fingerprint: str,
        key: str,
        state: str,
        error: str | None = None,
    ) -> None:
        """Upsert a file's identity and state; keeps its outputs until they are replaced."""
        self._run(
            """INSERT INTO files (path, inbox, size, mtime_ns, inode, fingerprint, key, state,
                                  error, updated)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (path) DO UPDATE SET
                   inbox = excluded.inbox, size = excluded.size, mtime_ns = excluded.mtime_ns,
                   inode = excluded.inode, fingerprint = excluded.fingerprint,
                   key = excluded.key, state = excluded.state, error = excluded.error,
                   updated = excluded.updated""",
            (str(path), inbox, *stat, fingerprint, key, state, error, self._clock()),
        )

    def file_done(self, path: Path, formats: list[str], outputs: list[Path]) -> None:
        self._run(
            "UPDATE files SET state = 'done', formats = ?, outputs = ?, error = NULL, updated = ?"
            " WHERE path = ?",
            (",".join(formats), json.dumps([str(p) for p in outputs]), self._clock(), str(path)),
        )

    # ------------------------------------------------------------ jobs

    def job(self, key: str) -> JobRow | None:
        rows = self._run(
            "SELECT key, state, attempts, last_error, status, request_id, result"
            " FROM jobs WHERE key = ?",
            (key,),
        )
        if not rows:
            return None
        row = rows[0]
        key, state, attempts, last_error, status, request_id, result = row
        parsed = json.loads(result) if result else None
        return JobRow(key, state, attempts, last_error, status, request_id, parsed)

    def start_attempt(self, key: str, fingerprint: str, settings: dict[str, Any]) -> int:
        """Mark a job as uploading and count the attempt; returns the attempt number."""
        now = self._clock()
        rows = self._run(
            """INSERT INTO jobs (key, fingerprint, settings, state, attempts, created, updated)
               VALUES (?, ?, ?, 'uploading', 1, ?, ?)
               ON CONFLICT (key) DO UPDATE SET
                   state = 'uploading', attempts = attempts + 1, updated = excluded.updated
               RETURNING attempts""",
            (key, fingerprint, json.dumps(settings, sort_keys=True), now, now),
        )
        return int(rows[0][0])

    def job_done(self, key: str, result: dict[str, Any], request_id: str | None) -> None:
        self._run(
            "UPDATE jobs SET state = 'done', result = ?, request_id = ?, last_error = NULL,"
            " status = 200, updated = ? WHERE key = ?",
            (json.dumps(result, ensure_ascii=False), request_id, self._clock(), key),
        )

    def job_failed(
        self, key: str, error: str, status: int | None, request_id: str | None, state: str
    ) -> None:
        self._run(
            "UPDATE jobs SET state = ?, last_error = ?, status = ?, request_id = ?, updated = ?"
            " WHERE key = ?",
            (state, error, status, request_id, self._clock(), key),
        )

    # ------------------------------------------------------------ sidecars

    def claim_sidecar(self, target: Path, source: Path) -> bool:
        """Reserve a sidecar path for a source; False if another source owns it."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO sidecars (path, source) VALUES (?, ?)",
                (str(target), str(source)),
            )
            row = self._db.execute(
                "SELECT source FROM sidecars WHERE path = ?", (str(target),)
            ).fetchone()
        return bool(row[0] == str(source))

    def sidecar_owner(self, target: Path) -> str | None:
        rows = self._run("SELECT source FROM sidecars WHERE path = ?", (str(target),))
        return str(rows[0][0]) if rows else None

    # ------------------------------------------------------------ reports

    def counts(self) -> dict[str, int]:
        return {
            str(state): int(n)
            for state, n in self._run("SELECT state, count(*) FROM files GROUP BY state")
        }

    def latest_failures(self, limit: int = 10) -> list[FileRow]:
        rows = self._run(
            "SELECT * FROM files WHERE state = 'failed' ORDER BY updated DESC LIMIT ?", (limit,)
        )
        return [FileRow(*row) for row in rows]

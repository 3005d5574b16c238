"""The ledger: what was seen, uploaded, done and failed, in SQLite (WAL).

Two kinds of row. A *job* is one transcript: content fingerprint plus the
settings that shape it; it holds the transcript once done, so the same content
under another name, or a file renamed, needs no second upload. A *file* is one
path in an inbox and the sidecars written for it. A third table records which
source owns each sidecar path, so two sources never overwrite each other. A
fourth holds the plan of a long recording's chunks and each finished chunk's
transcript (checkpoints), until the whole is done. A fifth keeps what each
(endpoint, model) pair was seen to take or refuse (``transcribe/limits.py``).

Writes are group-committed (``groupcommit.py``): durable when the call returns,
yet many workers share each fsync; reads never wait for writes (WAL).
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

from dropscribe import names
from dropscribe.ledger import migrations
from dropscribe.ledger.groupcommit import GroupCommit
from dropscribe.ledger.interface import (
    ChunkRow,
    Claim,
    FileRow,
    FileState,
    JobKey,
    JobRow,
    JobState,
)

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Iterator
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
CREATE TABLE IF NOT EXISTS chunks (
    key        TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    start      REAL NOT NULL,
    end        REAL NOT NULL,
    cut        REAL NOT NULL,
    pause      INTEGER NOT NULL,
    result     TEXT,
    request_id TEXT,
    PRIMARY KEY (key, idx)
);
CREATE TABLE IF NOT EXISTS capabilities (
    endpoint TEXT NOT NULL,
    model    TEXT NOT NULL,
    param    TEXT NOT NULL,
    value    TEXT NOT NULL,
    verdict  TEXT NOT NULL,
    reason   TEXT,
    updated  REAL NOT NULL,
    PRIMARY KEY (endpoint, model, param, value)
);
"""
LEDGER_NAME = "ledger.sqlite3"  # in state_dir


class SqliteLedger:
    """The ledger (``interface.Ledger``) in one SQLite file; thread-safe, and ``close()``
    stops its writer thread."""

    shared = False

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.where = str(path)
        self._clock = clock
        self._db = GroupCommit(path, SCHEMA, name="dropscribe-ledger")
        self._read = self._db.read
        self._write = self._db.write
        self._post = self._db.post
        try:
            self._write(migrations.migrate)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------ claims

    @contextlib.contextmanager
    def hold(self, key: JobKey, path: Path) -> Iterator[Claim]:  # noqa: ARG002
        """Nothing to claim: only this host uses the file, and its locks decide."""
        yield Claim(key)

    def confirm(self, claim: Claim) -> None:
        """Always still ours (see ``hold``)."""

    # ------------------------------------------------------------ files

    def file(self, path: Path) -> FileRow | None:
        rows = self._read("SELECT * FROM files WHERE path = ?", (names.text(path),))
        return _file_row(rows[0]) if rows else None

    def record_file(
        self,
        path: Path,
        inbox: str,
        stat: tuple[int, int, int],
        fingerprint: str,
        key: JobKey,
        state: FileState,
        error: str | None = None,
    ) -> None:
        """Upsert a file's identity and state; keeps its outputs until they are replaced."""
        why = names.text(error) if error is not None else None  # it may quote a name
        args = (names.text(path), inbox, *stat, fingerprint, str(key), state, why, self._clock())
        self._write(lambda db: db.execute(_UPSERT_FILE, args))

    def file_done(self, path: Path, formats: list[str], outputs: list[Path]) -> None:
        outputs_json = json.dumps([str(p) for p in outputs])  # ASCII: any name reads back
        args = (",".join(formats), outputs_json, self._clock(), names.text(path))
        self._post(
            lambda db: db.execute(
                "UPDATE files SET state = 'done', formats = ?, outputs = ?, error = NULL,"
                " updated = ? WHERE path = ?",
                args,
            )
        )

    # ------------------------------------------------------------ jobs

    def job(self, key: JobKey) -> JobRow | None:
        rows = self._read(_SELECT_JOB, (str(key),))
        return job_row(rows[0]) if rows else None

    def start_attempt(
        self,
        key: JobKey,
        settings: dict[str, Any],
        attempt: int,
        state: JobState = JobState.UPLOADING,
    ) -> None:
        """Count attempt number ``attempt`` of a job (queued, not waited for)."""
        now = self._clock()
        args = (
            str(key),
            key.digest,
            json.dumps(settings, sort_keys=True),
            state,
            attempt,
            now,
            now,
        )
        self._post(lambda db: db.execute(_UPSERT_ATTEMPT, args))

    def begin(
        self,
        path: Path,
        inbox: str,
        stat: tuple[int, int, int],
        key: JobKey,
        settings: dict[str, Any],
    ) -> tuple[JobRow | None, int]:
        """Note the file as in progress; return its finished job, or the attempt to make.

        The caller holds the job's lock, so nobody else counts attempts of this job
        meanwhile. Returns ``(job, 0)`` when the transcript exists, else ``(None, n)``.
        """
        job = self.job(key)
        now = self._clock()
        where = names.text(path)
        file_args = (where, inbox, *stat, key.digest, str(key), FileState.UPLOADING, None, now)
        self._post(lambda db: db.execute(_UPSERT_FILE, file_args))
        if job is not None and job.state == JobState.DONE and job.result is not None:
            return job, 0
        return None, self._next_attempt(key, job, settings)

    def _next_attempt(self, key: JobKey, job: JobRow | None, settings: dict[str, Any]) -> int:
        attempt = (job.attempts if job is not None else 0) + 1
        self.start_attempt(key, settings, attempt)
        return attempt

    def job_failed(
        self,
        key: JobKey,
        error: str,
        status: int | None,
        request_id: str | None,
        state: JobState,
    ) -> None:
        args = (state, names.text(error), status, request_id, self._clock(), str(key))
        self._post(
            lambda db: db.execute(
                "UPDATE jobs SET state = ?, last_error = ?, status = ?, request_id = ?,"
                " updated = ? WHERE key = ?",
                args,
            )
        )

    # ------------------------------------------------------------ sidecars

    def owner_of(self, sidecar: Path) -> str | None:
        rows = self._read("SELECT source FROM sidecars WHERE path = ?", (names.text(sidecar),))
        return str(rows[0][0]) if rows else None

    def finish(
        self,
        source: Path,
        done: tuple[JobKey, dict[str, Any], str | None] | None,
        choices: list[list[Path]],
        owner: str | None = None,
        claim: Claim | None = None,  # noqa: ARG002 - nobody else could have taken it
    ) -> list[Path | None]:
        """Store a fresh transcript (``done`` = key, result, request id) and claim sidecars.

        For each format, the first of its ``choices`` (chosen by the caller, who looked
        at the disk) that is unclaimed or already this source's; None where another
        source claimed every one meanwhile. One transaction, committed before this
        returns, and nothing in it but SQL. ``owner`` is who a claim is made for (by
        default the source's path).
        """
        me = owner or names.text(source)

        def fn(db: sqlite3.Connection) -> list[Path | None]:
            if done is not None:
                key, result, request_id = done
                db.execute(
                    "UPDATE jobs SET state = 'done', result = ?, request_id = ?,"
                    " last_error = NULL, status = 200, updated = ? WHERE key = ?",
                    (json.dumps(result, ensure_ascii=False), request_id, self._clock(), str(key)),
                )
                db.execute("DELETE FROM chunks WHERE key = ?", (str(key),))
                db.execute("DELETE FROM jobs WHERE key >= ? AND key < ?", key.chunk_range())
            chosen: list[Path | None] = []
            for options in choices:
                pick = None
                for target in options:
                    row = db.execute(
                        "SELECT source FROM sidecars WHERE path = ?", (names.text(target),)
                    ).fetchone()
                    if row is not None and row[0] != me:
                        continue
                    if row is None:
                        db.execute(
                            "INSERT INTO sidecars (path, source) VALUES (?, ?)",
                            (names.text(target), me),
                        )
                    pick = target
                    break
                chosen.append(pick)
            return chosen

        return self._write(fn)

    def forget_failure(self, source: Path, key: JobKey | None) -> None:
        """Let a quarantined recording be tried afresh: attempts back to zero."""

        def fn(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM files WHERE path = ? AND state = 'failed'", (names.text(source),)
            )
            if key is not None:
                db.execute(
                    "UPDATE jobs SET state = 'retry', attempts = 0"
                    " WHERE (key = ? OR (key >= ? AND key < ?)) AND state != 'done'",
                    (str(key), *key.chunk_range()),
                )

        self._write(fn)

    # ------------------------------------------------------------ chunks

    def chunk_plan(self, key: JobKey) -> list[ChunkRow]:
        """The stored chunks of a job, in order (empty when none was planned)."""
        rows = self._read(
            "SELECT idx, start, end, cut, pause, result, request_id FROM chunks"
            " WHERE key = ? ORDER BY idx",
            (str(key),),
        )
        return [
            ChunkRow(idx, start, end, cut, bool(pause), json.loads(res) if res else None, rid)
            for idx, start, end, cut, pause, res, rid in rows
        ]

    def save_plan(self, key: JobKey, spans: list[tuple[float, float, float, bool]]) -> None:
        """Record how a job's recording is cut (durable when this returns)."""

        def fn(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM chunks WHERE key = ?", (str(key),))
            db.executemany(
                "INSERT INTO chunks (key, idx, start, end, cut, pause) VALUES (?, ?, ?, ?, ?, ?)",
                [(str(key), idx, *span) for idx, span in enumerate(spans)],
            )

        self._write(fn)

    def chunk_done(
        self, key: JobKey, idx: int, result: dict[str, Any], request_id: str | None
    ) -> None:
        """Checkpoint one chunk's transcript (durable when this returns)."""
        args = (json.dumps(result, ensure_ascii=False), request_id, str(key), idx)
        self._write(
            lambda db: db.execute(
                "UPDATE chunks SET result = ?, request_id = ? WHERE key = ? AND idx = ?", args
            )
        )

    def chunk_attempt(self, key: JobKey, settings: dict[str, Any]) -> int:
        """Count a new attempt of one chunk (its own job row); return its number."""
        return self._next_attempt(key, self.job(key), settings)

    # ------------------------------------------------------------ reports

    def counts(self) -> dict[str, int]:
        rows = self._read("SELECT state, count(*) FROM files GROUP BY state")
        return {str(state): int(n) for state, n in rows}

    def latest_failures(self, limit: int = 10) -> list[FileRow]:
        rows = self._read(
            "SELECT * FROM files WHERE state = 'failed' ORDER BY updated DESC LIMIT ?", (limit,)
        )
        return [_file_row(row) for row in rows]

    # ------------------------------------------------------------ capabilities

    def capabilities(self, server: str, model: str) -> list[tuple[str, str, str]]:
        rows = self._read(
            "SELECT param, value, verdict FROM capabilities WHERE endpoint = ? AND model = ?",
            (server, model),
        )
        return [(str(p), str(v), str(verdict)) for p, v, verdict in rows]

    def record_capability(
        self, server: str, model: str, param: str, value: str, verdict: str, reason: str | None
    ) -> None:
        args = (server, model, param, value, verdict, reason, self._clock())
        self._write(lambda db: db.execute(_RECORD_CAPABILITY, args))

    def capabilities_with(self, verdict: str) -> list[tuple[str, str, str, str, str | None]]:
        rows = self._read(
            "SELECT endpoint, model, param, value, reason FROM capabilities"
            " WHERE verdict = ? ORDER BY endpoint, model, param, value",
            (verdict,),
        )
        return [(str(e), str(m), str(p), str(v), r) for e, m, p, v, r in rows]


_UPSERT_FILE = """
INSERT INTO files (path, inbox, size, mtime_ns, inode, fingerprint, key, state, error, updated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (path) DO UPDATE SET
    inbox = excluded.inbox, size = excluded.size, mtime_ns = excluded.mtime_ns,
    inode = excluded.inode, fingerprint = excluded.fingerprint, key = excluded.key,
    state = excluded.state, error = excluded.error, updated = excluded.updated
"""
# A refusal is never undone by a later confirmation of the same value.
_RECORD_CAPABILITY = """
INSERT INTO capabilities (endpoint, model, param, value, verdict, reason, updated)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO UPDATE SET verdict = excluded.verdict, reason = excluded.reason,
    updated = excluded.updated WHERE verdict != 'refused'
"""
_SELECT_JOB = (
    "SELECT key, state, attempts, last_error, status, request_id, result FROM jobs WHERE key = ?"
)
_UPSERT_ATTEMPT = """
INSERT INTO jobs (key, fingerprint, settings, state, attempts, created, updated)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    state = excluded.state, attempts = excluded.attempts, updated = excluded.updated
"""


def _file_row(row: tuple[Any, ...]) -> FileRow:
    path, inbox, size, mtime_ns, inode, fingerprint, key, *rest = row
    return FileRow(path, inbox, size, mtime_ns, inode, fingerprint, JobKey.parse(key), *rest)


def job_row(row: tuple[Any, ...]) -> JobRow:
    key, state, attempts, last_error, status, request_id, result = row
    parsed = json.loads(result) if result else None
    return JobRow(JobKey.parse(key), state, attempts, last_error, status, request_id, parsed)

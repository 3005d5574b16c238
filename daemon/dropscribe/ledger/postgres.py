"""The ledger in PostgreSQL, shared by every host that points at it (``ledger: url:``).

The same tables as ``store.SqliteLedger``, and two more that only several hosts need:

- ``claims``: one row per job in some host's hands (the key is the primary key: one
  running claim per job). A claim is taken in one statement that succeeds only where
  no row exists or the row's lease has run out; it carries a token from a sequence,
  so a later claim of the same job always holds a higher one. A heartbeat renews this
  daemon's leases; a host that dies loses them after ``lease_seconds`` and the next
  host to look takes the job over (counting the attempt). No transaction stays open
  during an upload: each statement is short, on a pooled connection.
- ``hosts``: each running daemon (process) with its last heartbeat, for ``status``.

Fencing: a host that was stuck past its lease must not publish over the new owner.
``finish()`` locks the claim row and checks the token in the same transaction that
stores the transcript and claims the sidecar names; ``confirm()`` checks it again
just before the sidecars get their final names.

Paths are stored relative to their inbox (``@name/sub/file.wav``), so hosts that
mount the share at different places agree on them; ``Places`` maps both ways.

A database that cannot be reached raises ``LedgerUnavailable`` from any method; the
ledger logs ``ledger.unavailable`` once when that starts and ``ledger.available`` when
it ends (the heartbeat notices, even when no file is at hand).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg_pool
import structlog

from dropscribe import __version__, names
from dropscribe.errors import ClaimedElsewhere, Fenced, LedgerUnavailable, SetupError
from dropscribe.ledger.interface import (
    ChunkRow,
    Claim,
    FileRow,
    FileState,
    JobKey,
    JobRow,
    JobState,
)
from dropscribe.ledger.store import job_row as _job_row

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    from dropscribe.config.settings import SharedLedger

log = structlog.get_logger("dropscribe")

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
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
    created     DOUBLE PRECISION NOT NULL,
    updated     DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    path        TEXT PRIMARY KEY,
    inbox       TEXT NOT NULL,
    size        BIGINT NOT NULL,
    mtime_ns    BIGINT NOT NULL,
    inode       BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    key         TEXT NOT NULL,
    state       TEXT NOT NULL,
    formats     TEXT NOT NULL DEFAULT '',
    outputs     TEXT NOT NULL DEFAULT '[]',
    error       TEXT,
    updated     DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS files_state ON files (state, updated);
CREATE TABLE IF NOT EXISTS sidecars (
    path   TEXT PRIMARY KEY,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    key        TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    start      DOUBLE PRECISION NOT NULL,
    "end"      DOUBLE PRECISION NOT NULL,
    cut        DOUBLE PRECISION NOT NULL,
    pause      BOOLEAN NOT NULL,
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
    updated  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (endpoint, model, param, value)
);
CREATE SEQUENCE IF NOT EXISTS claim_tokens;
CREATE TABLE IF NOT EXISTS claims (
    key     TEXT PRIMARY KEY,
    host    TEXT NOT NULL,
    run     TEXT NOT NULL,
    token   BIGINT NOT NULL,
    path    TEXT NOT NULL,
    claimed TIMESTAMPTZ NOT NULL,
    expires TIMESTAMPTZ NOT NULL,
    previous TEXT  -- the run it was taken over from, if it was
);
CREATE INDEX IF NOT EXISTS claims_run ON claims (run);
CREATE TABLE IF NOT EXISTS hosts (
    run     TEXT PRIMARY KEY,
    host    TEXT NOT NULL,
    pid     INTEGER NOT NULL,
    version TEXT NOT NULL,
    started TIMESTAMPTZ NOT NULL,
    beat    TIMESTAMPTZ NOT NULL
);
"""
# Serialises schema creation: two hosts starting at once would both CREATE otherwise.
SCHEMA_LOCK = 0x64726F70  # "drop"
CONNECT_SECONDS = 5.0  # a connection attempt, and a wait for a pooled connection
START_SECONDS = 10.0  # how long a starting daemon tries to reach the database
STATEMENT_SECONDS = 30.0  # longest any one statement may run
FORGET_HOSTS_AFTER = "7 days"  # daemons whose heartbeat is older leave `status`


class Places:
    """Paths as the shared ledger keeps them: ``@inbox/relative/path`` for anything
    inside an inbox (hosts may mount the share at different places, but give each
    inbox the same name), the absolute path otherwise."""

    def __init__(self, inboxes: Iterable[tuple[str, Path]]) -> None:
        self.update(inboxes)

    def update(self, inboxes: Iterable[tuple[str, Path]]) -> None:
        """Map the inboxes of a reloaded config (one assignment: readers never see half)."""
        # longest first: an inbox inside another is matched before its parent
        pairs = sorted(((name, names.text(path)) for name, path in inboxes), key=_longest)
        roots = [(name, root.rstrip("/")) for name, root in pairs]
        self._map = (roots, dict(roots))

    def portable(self, text: str) -> str:
        for name, root in self._map[0]:
            if text == root or text.startswith(root + "/"):
                return f"@{name}{text[len(root) :]}"
        return text

    def local(self, text: str) -> str:
        if not text.startswith("@"):
            return text
        name, slash, rest = text[1:].partition("/")
        root = self._map[1].get(name)
        return text if root is None else root + slash + rest


def _longest(pair: tuple[str, str]) -> int:
    return -len(pair[1])


class PostgresLedger:
    """The ledger (``interface.Ledger``) in a PostgreSQL database several hosts share;
    thread-safe (a connection pool), and ``close()`` stops its heartbeat."""

    shared = True

    def __init__(
        self,
        settings: SharedLedger,
        places: Places,
        *,
        pool_size: int = 4,
        daemon: bool = True,
        clock: Any = time.time,
    ) -> None:
        """Connect (or raise SetupError saying why not) and create what is missing. A
        ``daemon`` says it is alive and renews its leases; a command (status, retry)
        only reads and writes rows."""
        self.where = settings.url  # for messages (it holds no password)
        self._settings = settings
        self.places = places
        self._clock = clock
        self.host = settings.host_name()
        self.run = f"{self.host}:{os.getpid()}:{secrets.token_hex(4)}"
        self._lease = settings.lease_seconds
        self._up = True
        self._up_lock = threading.Lock()
        self._heart: threading.Thread | None = None
        self._orphans: set[int] = set()  # claims ended while the database was away
        self._orphans_lock = threading.Lock()
        self.on_available: Callable[[], None] | None = None  # called when it is back
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "application_name": f"dropscribe {self.host}",
            "connect_timeout": int(CONNECT_SECONDS),
            # a cut network is noticed in seconds, not after the kernel's two hours
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": 15_000,
            # a server that hangs (not gone, stuck) fails the statement, not the worker
            "options": f"-c statement_timeout={STATEMENT_SECONDS * 1000:.0f}",
        }
        if settings.password is not None:
            kwargs["password"] = settings.password
        self.places = places
        self._pool = psycopg_pool.ConnectionPool(
            settings.url,
            min_size=1,
            max_size=pool_size + 2,  # the heartbeat's, and the main loop's
            kwargs=kwargs,
            timeout=CONNECT_SECONDS,
            check=psycopg_pool.ConnectionPool.check_connection,
            reconnect_timeout=365 * 86400.0,  # keep trying for as long as it takes
            name="dropscribe-ledger",
            open=False,
        )
        try:
            # one plain connection first: the pool would only say it timed out, where
            # libpq says why (refused, no such database, password authentication failed)
            psycopg.connect(settings.url, **kwargs).close()
            self._pool.open(wait=True, timeout=START_SECONDS)
            self._create(announce=daemon)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self._pool.close()
            raise SetupError(
                f"cannot use the ledger at {settings.url}: {_why(exc)} (is the server"
                " up, and may this user connect and create tables?)"
            ) from None
        self._stop = threading.Event()
        if daemon:
            self._beat()
            self._heart = threading.Thread(target=self._beating, name="dropscribe-heartbeat")
            self._heart.daemon = True
            self._heart.start()

    def close(self) -> None:
        self._stop.set()
        if self._heart is None:
            self._pool.close()
            return
        self._heart.join()
        with contextlib.suppress(LedgerUnavailable), self._tx() as db:
            db.execute("DELETE FROM claims WHERE run = %s", (self.run,))
            db.execute("DELETE FROM hosts WHERE run = %s", (self.run,))
        self._pool.close()

    # ------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _tx(self, *, probe: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """A connection in a transaction, committed when the block ends. While the
        database is known to be down, a daemon's calls fail at once (no worker waits
        on the pool); its heartbeat ``probe``s, and notices when it is back."""
        self._refuse_while_down(probe)
        try:
            with self._pool.connection() as db, db.transaction():
                yield db
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise self._unavailable(exc) from None
        self._available()

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        self._refuse_while_down(probe=False)
        try:
            with self._pool.connection() as db:
                rows = db.execute(sql, args).fetchall()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise self._unavailable(exc) from None
        self._available()
        return rows

    def _refuse_while_down(self, probe: bool) -> None:
        if not self._up and not probe and self._heart is not None:
            raise LedgerUnavailable(f"the ledger at {self._settings.url} cannot be reached")

    def _unavailable(self, exc: Exception) -> LedgerUnavailable:
        why = _why(exc)
        with self._up_lock:
            was_up, self._up = self._up, False
        if was_up:
            log.error(
                "ledger.unavailable",
                ledger=self._settings.url,
                error=why,
                action="no file is claimed until the database answers again; files wait",
            )
        return LedgerUnavailable(f"the ledger at {self._settings.url} cannot be reached: {why}")

    def _available(self) -> None:
        if self._up:
            return
        with self._up_lock:
            was_up, self._up = self._up, True
        if not was_up:
            log.info("ledger.available", ledger=self._settings.url)
            if self.on_available is not None:
                self.on_available()

    def _create(self, *, announce: bool) -> None:
        with self._pool.connection() as db, db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            db.execute(SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema', %s)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise SetupError(
                    f"the ledger at {self._settings.url} was written by a newer dropscribe"
                    f" (layout {row[0]}; this one knows up to {SCHEMA_VERSION}): upgrade"
                    " dropscribe on this host"
                )
            if not announce:
                return
            others = db.execute(
                "SELECT run FROM hosts WHERE host = %s AND beat > now() - %s * interval '1s'",
                (self.host, self._lease),
            ).fetchall()
            if others:
                log.warning(
                    "ledger.host_name_in_use",
                    host=self.host,
                    runs=[run for (run,) in others],
                    action="give each host its own ledger.host (or hostname)",
                )
            db.execute("DELETE FROM hosts WHERE beat < now() - %s::interval", (FORGET_HOSTS_AFTER,))

    def _beat(self) -> None:
        """Say this daemon is alive and renew its leases (one short transaction)."""
        with self._tx(probe=True) as db:
            db.execute(
                "INSERT INTO hosts (run, host, pid, version, started, beat)"
                " VALUES (%s, %s, %s, %s, now(), now())"
                " ON CONFLICT (run) DO UPDATE SET beat = now()",
                (self.run, self.host, os.getpid(), __version__),
            )
            with self._orphans_lock:
                orphans = list(self._orphans)
            # a claim whose release failed (the database was away) is let go now, not
            # kept alive by this very heartbeat; every other one of ours is renewed
            db.execute("DELETE FROM claims WHERE run = %s AND token = ANY(%s)", (self.run, orphans))
            db.execute(
                "UPDATE claims SET expires = now() + %s * interval '1s' WHERE run = %s",
                (self._lease, self.run),
            )
        with self._orphans_lock:
            self._orphans.difference_update(orphans)

    def _beating(self) -> None:
        while not self._stop.wait(self._lease / 4):
            with contextlib.suppress(LedgerUnavailable):  # said so once, in _unavailable
                self._beat()

    def _text(self, path: Path | str) -> str:
        return self.places.portable(names.text(path))

    # ------------------------------------------------------------ claims

    @contextlib.contextmanager
    def hold(self, key: JobKey, path: Path) -> Iterator[Claim]:
        """Claim ``key`` (for ``path``) while the block runs (see the module's doc)."""
        args = {
            "key": str(key),
            "host": self.host,
            "run": self.run,
            "path": self._text(path),
            "lease": self._lease,
        }
        with self._tx() as db:
            row = db.execute(_CLAIM, args).fetchone()
            if row is None:
                held = db.execute(
                    "SELECT host, extract(epoch FROM expires - now()) FROM claims WHERE key = %s",
                    (str(key),),
                ).fetchone()
        if row is None:
            host, left = held if held is not None else ("another host", 0.0)
            raise ClaimedElsewhere(str(host), max(0.0, float(left)))
        token, before = row
        if before is not None and before != self.run:
            log.warning("claim.taken_over", key=str(key), from_run=before, token=token)
        claim = Claim(key, int(token))
        try:
            yield claim
        finally:
            self._release(claim)

    def _release(self, claim: Claim) -> None:
        try:
            with self._tx() as db:
                db.execute(
                    "DELETE FROM claims WHERE key = %s AND token = %s",
                    (str(claim.key), claim.token),
                )
        except LedgerUnavailable:  # the heartbeat lets it go once the database is back
            with self._orphans_lock:
                self._orphans.add(claim.token)

    def confirm(self, claim: Claim) -> None:
        try:
            rows = self._read(
                "SELECT 1 FROM claims WHERE key = %s AND token = %s AND expires > now()",
                (str(claim.key), claim.token),
            )
        except LedgerUnavailable as exc:
            raise Fenced(f"cannot confirm the claim on {claim.key}: {exc}") from None
        if not rows:
            raise Fenced(f"the claim on {claim.key} ran out; another host may hold it now")

    def _fence(self, db: psycopg.Connection[Any], claim: Claim) -> None:
        row = db.execute(
            "SELECT token, expires > now() FROM claims WHERE key = %s FOR UPDATE",
            (str(claim.key),),
        ).fetchone()
        if row is None or row[0] != claim.token or not row[1]:
            raise Fenced(f"the claim on {claim.key} ran out; another host may hold it now")

    # ------------------------------------------------------------ files

    def file(self, path: Path) -> FileRow | None:
        rows = self._read("SELECT * FROM files WHERE path = %s", (self._text(path),))
        return self._file_row(rows[0]) if rows else None

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
        why = names.text(error) if error is not None else None
        args = (self._text(path), inbox, *stat, fingerprint, str(key), state, why, self._clock())
        with self._tx() as db:
            db.execute(_UPSERT_FILE, args)

    def file_done(self, path: Path, formats: list[str], outputs: list[Path]) -> None:
        outputs_json = json.dumps([self._text(p) for p in outputs])
        with self._tx() as db:
            db.execute(
                "UPDATE files SET state = 'done', formats = %s, outputs = %s, error = NULL,"
                " updated = %s WHERE path = %s",
                (",".join(formats), outputs_json, self._clock(), self._text(path)),
            )

    # ------------------------------------------------------------ jobs

    def job(self, key: JobKey) -> JobRow | None:
        rows = self._read(_SELECT_JOB, (str(key),))
        return _job_row(rows[0]) if rows else None

    def start_attempt(
        self,
        key: JobKey,
        settings: dict[str, Any],
        attempt: int,
        state: JobState = JobState.UPLOADING,
    ) -> None:
        with self._tx() as db:
            self._attempt(db, key, settings, attempt, state)

    def _attempt(
        self,
        db: psycopg.Connection[Any],
        key: JobKey,
        settings: dict[str, Any],
        attempt: int,
        state: JobState = JobState.UPLOADING,
    ) -> None:
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
        db.execute(_UPSERT_ATTEMPT, args)

    def begin(
        self,
        path: Path,
        inbox: str,
        stat: tuple[int, int, int],
        key: JobKey,
        settings: dict[str, Any],
    ) -> tuple[JobRow | None, int]:
        """As ``SqliteLedger.begin``, in one transaction; the caller holds the claim."""
        now = self._clock()
        file_args = (
            self._text(path),
            inbox,
            *stat,
            key.digest,
            str(key),
            FileState.UPLOADING,
            None,
            now,
        )
        with self._tx() as db:
            found = db.execute(_SELECT_JOB, (str(key),)).fetchone()
            job = _job_row(found) if found else None
            db.execute(_UPSERT_FILE, file_args)
            if job is not None and job.state == JobState.DONE and job.result is not None:
                return job, 0
            attempt = (job.attempts if job is not None else 0) + 1
            self._attempt(db, key, settings, attempt)
        return None, attempt

    def job_failed(
        self,
        key: JobKey,
        error: str,
        status: int | None,
        request_id: str | None,
        state: JobState,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = %s, last_error = %s, status = %s, request_id = %s,"
                " updated = %s WHERE key = %s",
                (state, names.text(error), status, request_id, self._clock(), str(key)),
            )

    # ------------------------------------------------------------ sidecars

    def owner_of(self, sidecar: Path) -> str | None:
        rows = self._read("SELECT source FROM sidecars WHERE path = %s", (self._text(sidecar),))
        return self.places.local(str(rows[0][0])) if rows else None

    def finish(
        self,
        source: Path,
        done: tuple[JobKey, dict[str, Any], str | None] | None,
        choices: list[list[Path]],
        owner: str | None = None,
        claim: Claim | None = None,
    ) -> list[Path | None]:
        """As ``SqliteLedger.finish``; with ``claim``, fenced by its token (in the same
        transaction, the claim's row locked so that no takeover slips in between)."""
        me = self.places.portable(owner or names.text(source))
        chosen: list[Path | None] = []
        with self._tx() as db:
            if claim is not None:
                self._fence(db, claim)
            if done is not None:
                key, result, request_id = done
                db.execute(
                    "UPDATE jobs SET state = 'done', result = %s, request_id = %s,"
                    " last_error = NULL, status = 200, updated = %s WHERE key = %s",
                    (json.dumps(result, ensure_ascii=False), request_id, self._clock(), str(key)),
                )
                db.execute("DELETE FROM chunks WHERE key = %s", (str(key),))
                db.execute("DELETE FROM jobs WHERE key >= %s AND key < %s", key.chunk_range())
            chosen.extend(self._claim_name(db, options, me) for options in choices)
        return chosen

    def _claim_name(self, db: psycopg.Connection[Any], options: list[Path], me: str) -> Path | None:
        for target in options:
            where = self._text(target)
            took = db.execute(
                "INSERT INTO sidecars (path, source) VALUES (%s, %s)"
                " ON CONFLICT (path) DO NOTHING RETURNING source",
                (where, me),
            ).fetchone()
            if took is not None:
                return target
            row = db.execute("SELECT source FROM sidecars WHERE path = %s", (where,)).fetchone()
            if row is not None and row[0] == me:
                return target
        return None

    def forget_failure(self, source: Path, key: JobKey | None) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM files WHERE path = %s AND state = 'failed'", (self._text(source),)
            )
            if key is not None:
                db.execute(
                    "UPDATE jobs SET state = 'retry', attempts = 0"
                    " WHERE (key = %s OR (key >= %s AND key < %s)) AND state != 'done'",
                    (str(key), *key.chunk_range()),
                )

    # ------------------------------------------------------------ chunks

    def chunk_plan(self, key: JobKey) -> list[ChunkRow]:
        rows = self._read(
            'SELECT idx, start, "end", cut, pause, result, request_id FROM chunks'
            " WHERE key = %s ORDER BY idx",
            (str(key),),
        )
        return [
            ChunkRow(idx, start, end, cut, bool(pause), json.loads(res) if res else None, rid)
            for idx, start, end, cut, pause, res, rid in rows
        ]

    def save_plan(self, key: JobKey, spans: list[tuple[float, float, float, bool]]) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM chunks WHERE key = %s", (str(key),))
            with db.cursor() as cur:
                cur.executemany(
                    'INSERT INTO chunks (key, idx, start, "end", cut, pause)'
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    [(str(key), idx, *span) for idx, span in enumerate(spans)],
                )

    def chunk_done(
        self, key: JobKey, idx: int, result: dict[str, Any], request_id: str | None
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE chunks SET result = %s, request_id = %s WHERE key = %s AND idx = %s",
                (json.dumps(result, ensure_ascii=False), request_id, str(key), idx),
            )

    def chunk_attempt(self, key: JobKey, settings: dict[str, Any]) -> int:
        with self._tx() as db:
            found = db.execute(_SELECT_JOB, (str(key),)).fetchone()
            attempt = (_job_row(found).attempts if found else 0) + 1
            self._attempt(db, key, settings, attempt)
        return attempt

    # ------------------------------------------------------------ capabilities

    def capabilities(self, server: str, model: str) -> list[tuple[str, str, str]]:
        rows = self._read(
            "SELECT param, value, verdict FROM capabilities WHERE endpoint = %s AND model = %s",
            (server, model),
        )
        return [(str(p), str(v), str(verdict)) for p, v, verdict in rows]

    def record_capability(
        self, server: str, model: str, param: str, value: str, verdict: str, reason: str | None
    ) -> None:
        with self._tx() as db:
            db.execute(
                _RECORD_CAPABILITY, (server, model, param, value, verdict, reason, self._clock())
            )

    def capabilities_with(self, verdict: str) -> list[tuple[str, str, str, str, str | None]]:
        rows = self._read(
            "SELECT endpoint, model, param, value, reason FROM capabilities"
            " WHERE verdict = %s ORDER BY endpoint, model, param, value",
            (verdict,),
        )
        return [(str(e), str(m), str(p), str(v), r) for e, m, p, v, r in rows]

    # ------------------------------------------------------------ reports

    def counts(self) -> dict[str, int]:
        rows = self._read("SELECT state, count(*) FROM files GROUP BY state")
        return {str(state): int(n) for state, n in rows}

    def latest_failures(self, limit: int = 10) -> list[FileRow]:
        rows = self._read(
            "SELECT * FROM files WHERE state = 'failed' ORDER BY updated DESC LIMIT %s", (limit,)
        )
        return [self._file_row(row) for row in rows]

    def hosts(self) -> list[HostRow]:
        """Every daemon that shares the ledger (its last heartbeat, its claims)."""
        rows = self._read(
            "SELECT h.host, h.run, h.version, extract(epoch FROM now() - h.beat),"
            " count(c.key) FROM hosts h LEFT JOIN claims c ON c.run = h.run"
            " GROUP BY h.host, h.run, h.version, h.beat ORDER BY h.host, h.run"
        )
        return [HostRow(str(h), str(r), str(v), float(age), int(n)) for h, r, v, age, n in rows]

    def claims(self) -> list[ClaimRow]:
        """The jobs in some host's hands now, oldest first."""
        rows = self._read(
            "SELECT host, path, key, token, extract(epoch FROM now() - claimed),"
            " extract(epoch FROM expires - now()) FROM claims ORDER BY claimed"
        )
        return [
            ClaimRow(str(h), self.places.local(str(p)), str(k), int(t), float(a), float(x))
            for h, p, k, t, a, x in rows
        ]

    def _file_row(self, row: tuple[Any, ...]) -> FileRow:
        path, inbox, size, mtime_ns, inode, fingerprint, key, state, formats, outputs, *rest = row
        outputs = json.dumps([self.places.local(p) for p in json.loads(outputs)])
        return FileRow(
            self.places.local(path),
            inbox,
            size,
            mtime_ns,
            inode,
            fingerprint,
            JobKey.parse(key),
            state,
            formats,
            outputs,
            *rest,
        )

    # ------------------------------------------------------------ copying in

    def copy_in(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> int:
        """Insert ``rows`` into ``table`` where their key is not there yet (``ledger
        migrate``); returns how many were new. Paths must already be portable."""
        quoted = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO {table} ({quoted}) VALUES ({marks}) ON CONFLICT DO NOTHING"  # noqa: S608 - our own names
        count = 0
        with self._tx() as db, db.cursor() as cur:
            for row in rows:
                cur.execute(sql, row)
                count += cur.rowcount
        return count

    def portable(self, text: str) -> str:
        return self.places.portable(text)


@dataclass(frozen=True)
class HostRow:
    host: str
    run: str
    version: str
    beat_age: float  # seconds since its last heartbeat
    claims: int


@dataclass(frozen=True)
class ClaimRow:
    host: str
    path: str
    key: str
    token: int
    age: float  # seconds since it was claimed
    left: float  # seconds until its lease runs out (unless renewed)


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


# One statement: a new claim, or a takeover of one whose lease ran out; no row back
# when another host holds the job. ``previous`` is the run it was taken from (None: a
# new claim), set from the old row inside the update itself, so that it is never a
# guess made from an earlier snapshot.
_CLAIM = """
INSERT INTO claims AS c (key, host, run, token, path, claimed, expires, previous)
VALUES (%(key)s, %(host)s, %(run)s, nextval('claim_tokens'), %(path)s, now(),
        now() + %(lease)s * interval '1s', NULL)
ON CONFLICT (key) DO UPDATE SET host = excluded.host, run = excluded.run,
    token = excluded.token, path = excluded.path, claimed = excluded.claimed,
    expires = excluded.expires, previous = c.run
WHERE c.expires < now()
RETURNING c.token, c.previous
"""
_UPSERT_FILE = """
INSERT INTO files (path, inbox, size, mtime_ns, inode, fingerprint, key, state, error, updated)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (path) DO UPDATE SET
    inbox = excluded.inbox, size = excluded.size, mtime_ns = excluded.mtime_ns,
    inode = excluded.inode, fingerprint = excluded.fingerprint, key = excluded.key,
    state = excluded.state, error = excluded.error, updated = excluded.updated
"""
_RECORD_CAPABILITY = """
INSERT INTO capabilities AS c (endpoint, model, param, value, verdict, reason, updated)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (endpoint, model, param, value) DO UPDATE SET verdict = excluded.verdict,
    reason = excluded.reason, updated = excluded.updated WHERE c.verdict != 'refused'
"""
_SELECT_JOB = (
    "SELECT key, state, attempts, last_error, status, request_id, result FROM jobs WHERE key = %s"
)
_UPSERT_ATTEMPT = """
INSERT INTO jobs (key, fingerprint, settings, state, attempts, created, updated)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (key) DO UPDATE SET
    state = excluded.state, attempts = excluded.attempts, updated = excluded.updated
"""

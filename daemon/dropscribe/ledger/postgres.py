"""The ledger in PostgreSQL, shared by every host that points at it (``ledger: url:``).

The same tables as ``store.SqliteLedger`` (``schema.LAYOUT``, the same version and
steps; and the same statements, ``queries.py``), plus what only several hosts need:
``claims`` and ``hosts`` (``leases.py``: claims, leases, the heartbeat, fencing). Paths
are stored relative to their inbox (``places.py``), so hosts that mount the share at
different places agree on them. The connection pool, and what happens while the
database is away, are ``database.py``'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any

from dropscribe import names
from dropscribe.errors import LedgerError, LedgerTooNew, SetupError
from dropscribe.ledger import migrations, queries
from dropscribe.ledger.afters import AfterRows
from dropscribe.ledger.database import Database
from dropscribe.ledger.heard import HeardRows
from dropscribe.ledger.leases import ClaimRow, HostRow, Leases
from dropscribe.ledger.owed import OwedHook, SharedOwedRows
from dropscribe.ledger.queries import Reads, file_row, job_row
from dropscribe.ledger.schema import Dialect
from dropscribe.ledger.sends import RECORD, SendReads
from dropscribe.ledger.spend import SPEND_LOCK, SpendRows
from dropscribe.ledger.steprows import StepRows
from dropscribe.ledger.waits import WaitRows
from dropscribe.vocab.states import FileState, JobKey, JobState

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    import psycopg

    from dropscribe.ledger.interface import Claim, FileRow, JobRow
    from dropscribe.ledger.places import Places
    from dropscribe.vocab.config import SharedLedger

# Serialises schema creation: two hosts starting at once would both CREATE otherwise.
SCHEMA_LOCK = 0x64726F70  # "drop"


class PostgresLedger(  # hooks20: SharedOwedRows
    Reads, StepRows, SendReads, SpendRows, HeardRows, WaitRows, AfterRows, SharedOwedRows
):
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
        clock: Callable[[], float] = time.time,
        migrated: bool = False,
        state_dir: Path | None = None,
    ) -> None:
        """Connect (or raise SetupError saying why not) and create what is missing. A
        ``daemon`` (that of ``state_dir``) says it is alive and renews its leases; a
        command (status, retry) only reads and writes rows. ``migrated``: a ledger at this
        layout is not touched (no DDL: a worker process, whose main process migrated it,
        starts while another session holds a table, where CREATE INDEX IF NOT EXISTS would
        wait for it)."""
        self.where = settings.url  # for messages (it holds no password)
        self.places = places
        self.host = settings.host_name()  # this host's name among those sharing it
        self._clock = clock
        self._db = Database(settings, pool_size=pool_size, fail_fast=daemon)
        try:
            if not (migrated and self._current()):
                self._create()
            lease = settings.lease_seconds
            self._leases = Leases(
                self._db, self.host, lease, beating=daemon, state_dir=state_dir, worker=migrated
            )
        except LedgerTooNew as exc:
            self._db.close()
            raise SetupError(str(exc)) from None
        except LedgerError as exc:
            self._db.close()
            raise self._db.setup_error(exc) from None
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._leases.close()
        self._db.close()

    def give_up_at(self, when: float) -> None:
        """No statement waits past ``when`` (a lock another session holds, a pooled
        connection): cancelled, rolled back, ``LedgerGaveUp`` (``Database.give_up_at``)."""
        self._db.give_up_at(when)

    @property
    def on_available(self) -> Callable[[], None] | None:
        """Called when the database answers again after it was away."""
        return self._db.on_available

    @on_available.setter
    def on_available(self, call: Callable[[], None] | None) -> None:
        self._db.on_available = call

    def _current(self) -> bool:
        """Whether the ledger is at this dropscribe's layout (reads only)."""

        def execute(sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            return self._db.rows(queries.for_psycopg(sql), args)

        return migrations.stored_version(execute, Dialect.POSTGRES) == migrations.SCHEMA_VERSION

    def _create(self) -> None:
        with self._db.tx() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))

            def execute(sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
                cur = db.execute(queries.for_psycopg(sql), args)
                return cur.fetchall() if cur.description is not None else []

            migrations.migrate(execute, Dialect.POSTGRES, self.where)

    # ------------------------------------------------------------ plumbing

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._db.rows(queries.for_psycopg(sql), args)

    def _stored(self, path: Path | str) -> str:
        return self.places.portable(names.text(path))

    def _shown(self, text: str) -> str:
        return self.places.local(text)

    def _execute(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._tx() as execute:
            execute(sql, args)

    def _returning(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """A write's RETURNING rows (rows18's sweep)."""
        with self._tx() as execute:
            return execute(sql, args).fetchall()

    def _spend_turn(self, fn: Callable[[Callable[..., list[tuple[Any, ...]]]], Any]) -> Any:
        """``fn`` in a transaction that holds the spend lock (one reservation at a time
        among every host sharing the ledger)."""
        with self._db.tx() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (SPEND_LOCK,))

            def rows(sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
                cur = db.execute(queries.for_psycopg(sql), args)
                return cur.fetchall() if cur.description is not None else []

            return fn(rows)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Callable[[str, tuple[Any, ...]], psycopg.Cursor[Any]]]:
        """The queries' statements in one transaction: ``execute(sql, args)``."""
        with self._db.tx() as db:
            yield lambda sql, args: db.execute(queries.for_psycopg(sql), args)

    # ------------------------------------------------------------ claims

    def hold(self, key: JobKey, path: Path) -> contextlib.AbstractContextManager[Claim]:
        """Claim ``key`` (for ``path``) while the block runs (``leases.Leases.hold``)."""
        return self._leases.hold(key, self._stored(path))

    def confirm(self, claim: Claim) -> None:
        self._leases.confirm(claim)

    def hold_step(
        self, key: JobKey, step: str, shaping: str, path: Path
    ) -> contextlib.AbstractContextManager[Claim]:
        """One step claimed by this host alone (stepclaims33), as a job is: the claim
        named ``step:<job key>:<step>:<shaping>``, leased and renewed by the heartbeat."""
        named = JobKey(f"step:{key}:{step}", shaping)  # str(): step:<key>:<step>:<shaping>
        return self._leases.hold(named, self._stored(path))

    def _write_fenced(self, claim: Claim | None, sql: str, args: tuple[Any, ...]) -> None:
        """A step's write, in the transaction that checks its claim (stepsfence)."""
        with self._db.tx() as db:
            if claim is not None and claim.token:
                Leases.fence(db, claim)
            db.execute(queries.for_psycopg(sql), args)

    # ------------------------------------------------------------ files

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
        why = names.text(error) if error is not None else None
        row = (self._stored(path), inbox, *stat, fingerprint, str(key), state, why)
        args = (*row, self._clock(), next_try)
        with self._tx() as execute:
            execute(queries.UPSERT_FILE, args)

    def file_done(
        self, path: Path, formats: list[str], outputs: list[Path], owed: OwedHook | None = None
    ) -> None:
        outputs_json = json.dumps([self._stored(p) for p in outputs])
        args = (",".join(formats), outputs_json, self._clock(), self._stored(path))
        self.owing(queries.FILE_DONE, args, owed)  # hooks20: its hook owed in the same write

    # ------------------------------------------------------------ jobs

    def start_attempt(
        self,
        key: JobKey,
        settings: dict[str, Any],
        attempt: int,
        state: JobState = JobState.UPLOADING,
    ) -> None:
        with self._tx() as execute:
            execute(
                queries.UPSERT_ATTEMPT,
                queries.attempt_args(key, settings, state, attempt, self._clock()),
            )

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
        row = (self._stored(path), inbox, *stat, key.digest, str(key), FileState.UPLOADING)
        file_args = (*row, None, now, None)  # no error; no next try: under way
        with self._tx() as execute:
            found = execute(queries.SELECT_JOB, (str(key),)).fetchone()
            job = job_row(found) if found else None
            execute(queries.UPSERT_FILE, file_args)
            if job is not None and job.state == JobState.DONE and job.result is not None:
                return job, 0
            attempt = (job.attempts if job is not None else 0) + 1
            args = queries.attempt_args(key, settings, JobState.UPLOADING, attempt, now)
            execute(queries.UPSERT_ATTEMPT, args)
        return None, attempt

    def job_failed(
        self,
        key: JobKey,
        error: str,
        status: int | None,
        request_id: str | None,
        state: JobState,
    ) -> None:
        args = (state, names.text(error), status, request_id, self._clock(), str(key))
        with self._tx() as execute:
            execute(queries.JOB_FAILED, args)

    # ------------------------------------------------------------ sidecars

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
        with self._db.tx() as db:
            if claim is not None:
                Leases.fence(db, claim)
            if done is not None:
                key, result, request_id = done
                result_json = json.dumps(result, ensure_ascii=False)
                db.execute(
                    queries.for_psycopg(queries.JOB_DONE),
                    (result_json, request_id, self._clock(), str(key)),
                )
                db.execute("DELETE FROM chunks WHERE key = %s", (str(key),))
                db.execute("DELETE FROM jobs WHERE key >= %s AND key < %s", key.chunk_range())
            return [self._claim_name(db, options, me) for options in choices]

    def _claim_name(self, db: psycopg.Connection[Any], options: list[Path], me: str) -> Path | None:
        """The first of ``options`` that nobody else claimed (claimed for ``me`` now)."""
        for target in options:
            where = self._stored(target)
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
        with self._tx() as execute:
            execute(queries.FORGET_FILE, (self._stored(source),))
            if key is not None:
                execute(queries.FORGET_ATTEMPTS, (str(key), *key.chunk_range()))

    # ------------------------------------------------------------ chunks

    def save_plan(self, key: JobKey, spans: list[tuple[float, float, float, bool]]) -> None:
        with self._db.tx() as db:
            db.execute("DELETE FROM chunks WHERE key = %s", (str(key),))
            with db.cursor() as cur:
                cur.executemany(
                    queries.for_psycopg(queries.SAVE_CHUNK),
                    [(str(key), idx, *span) for idx, span in enumerate(spans)],
                )

    def chunk_done(
        self, key: JobKey, idx: int, result: dict[str, Any], request_id: str | None
    ) -> None:
        args = (json.dumps(result, ensure_ascii=False), request_id, str(key), idx)
        with self._tx() as execute:
            execute(queries.CHUNK_DONE, args)

    def chunk_attempt(self, key: JobKey, settings: dict[str, Any]) -> int:
        with self._tx() as execute:
            found = execute(queries.SELECT_JOB, (str(key),)).fetchone()
            attempt = (job_row(found).attempts if found else 0) + 1
            args = queries.attempt_args(key, settings, JobState.UPLOADING, attempt, self._clock())
            execute(queries.UPSERT_ATTEMPT, args)
        return attempt

    # ------------------------------------------------------------ capabilities

    def record_capability(
        self, server: str, model: str, param: str, value: str, verdict: str, reason: str | None
    ) -> None:
        args = (server, model, param, value, verdict, reason, self._clock())
        with self._tx() as execute:
            execute(queries.RECORD_CAPABILITY, args)

    def record_send(
        self, key: JobKey, endpoint: str, model: str, path: Path, state: str, reason: str | None
    ) -> None:
        args = (str(key), endpoint, model, self._stored(path), state, reason, self._clock())
        with self._tx() as execute:
            execute(RECORD, args)

    # ------------------------------------------------------------ reports

    def hosts(self) -> list[HostRow]:
        """Every daemon that shares the ledger (its last heartbeat, its claims)."""
        return self._leases.hosts()

    def claims(self) -> list[ClaimRow]:
        """The jobs in some host's hands now, oldest first, by this host's paths."""
        return self._leases.claims(self._shown)

    def _file_row(self, row: tuple[Any, ...]) -> FileRow:
        found = file_row(row)
        outputs = json.dumps([self._shown(p) for p in json.loads(found.outputs)])
        return dataclasses.replace(found, path=self._shown(found.path), outputs=outputs)

    # ------------------------------------------------------------ copying in

    def copy_in(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> int:
        """Insert ``rows`` into ``table`` where their key is not there yet (``ledger
        migrate``); returns how many were new. Paths must already be portable."""
        quoted = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO {table} ({quoted}) VALUES ({marks}) ON CONFLICT DO NOTHING"  # noqa: S608 - our own names
        count = 0
        with self._db.tx() as db, db.cursor() as cur:
            for row in rows:
                cur.execute(sql, row)
                count += cur.rowcount
        return count

    def portable(self, text: str) -> str:
        return self.places.portable(text)

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
yet many workers share each fsync; reads never wait for writes (WAL). The tables are
``schema.LAYOUT``'s; SQLite's errors leave this class as ``LedgerError``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any, TypeVar

from dropscribe import names
from dropscribe.errors import LedgerError, LedgerGaveUp, LedgerUnavailable
from dropscribe.ledger import locked, migrations, queries
from dropscribe.ledger.afters import AfterRows
from dropscribe.ledger.groupcommit import GroupCommit
from dropscribe.ledger.heard import HeardRows
from dropscribe.ledger.interface import Claim, JobRow
from dropscribe.ledger.owed import OWE, OwedRows
from dropscribe.ledger.queries import Reads
from dropscribe.ledger.schema import LAYOUT, Dialect
from dropscribe.ledger.sends import RECORD, SendReads
from dropscribe.ledger.spend import SpendRows
from dropscribe.ledger.steprows import StepRows
from dropscribe.ledger.waits import WaitRows
from dropscribe.ledger.writeturn import GaveUp, TurnTaken
from dropscribe.vocab.states import FileState, JobKey, JobState

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from dropscribe.ledger.owed import OwedHook

LEDGER_NAME = "ledger.sqlite3"  # in state_dir
T = TypeVar("T")


@contextlib.contextmanager
def mapped(database: Path | None = None) -> Iterator[None]:
    """SQLite's errors in the block raised as LedgerError (same message; the cause kept);
    the write turn held by another process as LedgerUnavailable: a file waits for it,
    nothing counted against it (lock17); so is ``database`` locked by another process's
    write transaction past the busy timeout (review17b); a wait cut short by a stopping
    daemon as LedgerGaveUp (grace18)."""
    try:
        yield
    except GaveUp as exc:
        raise LedgerGaveUp(str(exc)) from exc
    except TurnTaken as exc:
        raise LedgerUnavailable(str(exc)) from exc
    except sqlite3.Error as exc:
        if locked.busy(exc):
            raise locked.unavailable(exc, database) from exc
        raise LedgerError(str(exc)) from exc


class SqliteLedger(  # hooks20: OwedRows
    Reads, StepRows, SendReads, SpendRows, HeardRows, WaitRows, AfterRows, OwedRows
):
    """The ledger (``interface.Ledger``) in one SQLite file; thread-safe, and ``close()``
    stops its writer thread."""

    shared = False

    def __init__(
        self, path: Path, clock: Callable[[], float] = time.time, *, reading: bool = False
    ) -> None:
        """``reading``: for a command that reads; a ledger needing no migration is then
        opened without taking the write turn (another process may hold it: attack17)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.where = str(path)
        self._clock = clock
        with mapped(path):
            self._db = GroupCommit(path, "", name="dropscribe-ledger")
        self._post = self._db.post
        try:
            with mapped(path):
                current = reading and self._db.untouched(self._migrate)
            if not current:
                self._write(self._migrate)
        except BaseException:
            self._db.close()
            raise

    def _migrate(self, db: sqlite3.Connection) -> int:
        return migrations.migrate(
            lambda sql, args: db.execute(sql, args).fetchall(), Dialect.SQLITE, self.where
        )

    def close(self) -> None:
        with mapped(self.path):
            self._db.close()

    def give_up_at(self, when: float) -> None:
        """No write waits past ``when`` for the ledger held elsewhere (``GroupCommit``)."""
        self._db.give_up_at(when)

    def _write(self, fn: Callable[[sqlite3.Connection], T], *, kept: bool = False) -> T:
        """``kept``: a paid answer, a finished file (uploads19: it waits ``KEPT`` more at
        a stop, rather than being asked for again at the next start)."""
        with mapped(self.path):
            return self._db.write(fn, kept=kept)

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with mapped(self.path):
            return self._db.read(sql, args)

    def _execute(self, sql: str, args: tuple[Any, ...]) -> None:
        self._write(lambda db: db.execute(sql, args))

    def _returning(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """A write's RETURNING rows (rows18's sweep)."""
        return self._write(lambda db: db.execute(sql, args).fetchall())

    def _spend_turn(self, fn: Callable[[Callable[..., list[tuple[Any, ...]]]], T]) -> T:
        """``fn`` in a write transaction (BEGIN IMMEDIATE, the write turn's flock)."""
        return self._write(lambda db: fn(lambda sql, args: db.execute(sql, args).fetchall()))

    _together = _spend_turn  # hooks20: a hook owed in the write of its outcome

    # ------------------------------------------------------------ claims

    @contextlib.contextmanager
    def hold(self, key: JobKey, path: Path) -> Iterator[Claim]:  # noqa: ARG002
        """Nothing to claim: only this host uses the file, and its locks decide."""
        yield Claim(key)

    def confirm(self, claim: Claim) -> None:
        """Always still ours (see ``hold``)."""

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
        """Upsert a file's identity and state; keeps its outputs until they are replaced."""
        why = names.text(error) if error is not None else None  # it may quote a name
        row = (names.text(path), inbox, *stat, fingerprint, str(key), state, why)
        args = (*row, self._clock(), next_try)
        self._write(lambda db: db.execute(queries.UPSERT_FILE, args))

    def file_done(
        self, path: Path, formats: list[str], outputs: list[Path], owed: OwedHook | None = None
    ) -> None:
        outputs_json = json.dumps([str(p) for p in outputs])  # ASCII: any name reads back
        args = (",".join(formats), outputs_json, self._clock(), names.text(path))
        owing = self.owe_args(owed) if owed is not None else None

        def fn(db: sqlite3.Connection) -> None:
            db.execute(queries.FILE_DONE, args)
            if owing is not None:  # hooks20: in the same write
                db.execute(OWE, owing)

        self._post(fn, kept=True)

    # ------------------------------------------------------------ jobs

    def start_attempt(
        self,
        key: JobKey,
        settings: dict[str, Any],
        attempt: int,
        state: JobState = JobState.UPLOADING,
    ) -> None:
        """Count attempt number ``attempt`` of a job (queued, not waited for)."""
        args = queries.attempt_args(key, settings, state, attempt, self._clock())
        self._post(lambda db: db.execute(queries.UPSERT_ATTEMPT, args))

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
        row = (where, inbox, *stat, key.digest, str(key), FileState.UPLOADING, None, now)
        file_args = (*row, None)  # no next try: under way
        self._post(lambda db: db.execute(queries.UPSERT_FILE, file_args))
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
        self._post(lambda db: db.execute(queries.JOB_FAILED, args))

    # ------------------------------------------------------------ sidecars

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
                    queries.JOB_DONE,
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

        return self._write(fn, kept=done is not None)

    def forget_failure(self, source: Path, key: JobKey | None) -> None:
        """Let a quarantined recording be tried afresh: attempts back to zero."""

        def fn(db: sqlite3.Connection) -> None:
            db.execute(queries.FORGET_FILE, (names.text(source),))
            if key is not None:
                db.execute(queries.FORGET_ATTEMPTS, (str(key), *key.chunk_range()))

        self._write(fn)

    # ------------------------------------------------------------ chunks

    def save_plan(self, key: JobKey, spans: list[tuple[float, float, float, bool]]) -> None:
        """Record how a job's recording is cut (durable when this returns)."""

        def fn(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM chunks WHERE key = ?", (str(key),))
            db.executemany(
                queries.SAVE_CHUNK, [(str(key), idx, *span) for idx, span in enumerate(spans)]
            )

        self._write(fn)

    def chunk_done(
        self, key: JobKey, idx: int, result: dict[str, Any], request_id: str | None
    ) -> None:
        """Checkpoint one chunk's transcript (durable when this returns)."""
        args = (json.dumps(result, ensure_ascii=False), request_id, str(key), idx)
        self._write(lambda db: db.execute(queries.CHUNK_DONE, args), kept=True)

    def chunk_attempt(self, key: JobKey, settings: dict[str, Any]) -> int:
        """Count a new attempt of one chunk (its own job row); return its number."""
        return self._next_attempt(key, self.job(key), settings)

    # ------------------------------------------------------------ reports

    # ------------------------------------------------------------ capabilities

    def record_capability(
        self, server: str, model: str, param: str, value: str, verdict: str, reason: str | None
    ) -> None:
        args = (server, model, param, value, verdict, reason, self._clock())
        self._write(lambda db: db.execute(queries.RECORD_CAPABILITY, args))

    def record_send(
        self, key: JobKey, endpoint: str, model: str, path: Path, state: str, reason: str | None
    ) -> None:
        args = (str(key), endpoint, model, self._stored(path), state, reason, self._clock())
        self._write(lambda db: db.execute(RECORD, args))


class ReadOnly:
    """A SQLite ledger opened read-only, its rows read table by table (``ledger migrate``
    copies them into a shared one); SQLite's errors raised as LedgerError."""

    def __init__(self, path: Path) -> None:
        with mapped():  # as_uri: a ? # or % in the path is the path's, not the URI's
            self._db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)

    def close(self) -> None:
        self._db.close()

    def tables(self) -> set[str]:
        """The tables it has (one from before the steps lacks theirs)."""
        with mapped():
            found = self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            return {name for (name,) in found}

    def rows(self, table: str) -> Iterator[dict[str, Any]]:
        """Each row of ``table`` (one ``ledger migrate`` copies), by its columns' names; a
        column an older ledger lacks (until16: files' next_try) reads NULL."""
        columns = LAYOUT.table(table).names
        with mapped():
            present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
        quoted = ", ".join(f'"{c}"' if c in present else "NULL" for c in columns)
        with mapped():
            for row in self._db.execute(f"SELECT {quoted} FROM {table}"):  # noqa: S608 - our own names
                yield dict(zip(columns, row, strict=True))

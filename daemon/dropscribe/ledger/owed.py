"""hooks20: the hooks a daemon owes, kept in the ledger until they have run.

A folder's hook is owed in the very write that records its file's outcome (done,
quarantined, the steps' hook claimed), and the row goes once the hook has run
(``hook.ran`` or ``hook.failed``: a hook that fails is not tried again). A process that
dies in between (kill -9, OOM, power) leaves the row; the next look (at start, each
rescan) finds it owed by a run no longer alive, takes it (one statement: of two hosts,
one does) and runs it late. At least once, not exactly once: a death between the
hook's end and the row's deletion runs it again. attack21: a look pages through the
rows of its host's inboxes until it has taken ``LATE`` (the oldest hundred of them all,
narrowed afterwards, hid every later row behind a hundred of another host's inbox).

``run`` names the process that owes a row. SQLite: one daemon holds the state_dir's
lock, so a run is a process of this machine (pid and start time, read in /proc);
PostgreSQL: a daemon's run (``leases.Leases.run``), alive while its heartbeat is
younger than the lease. A ``held`` row is a done file's hook waiting for its pending
``after:`` (paras19); settling that row takes it in the same write (``hook_unheld``),
and one whose after: row went otherwise (the rescan's sweep dropped it: the recording
gone by hand) is due at once, whoever owed it, with ``moved_to`` null.
"""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from dropscribe import names
from dropscribe.ledger.steprows import CLAIM_HOOK

if TYPE_CHECKING:
    from collections.abc import Callable

    from dropscribe.ledger.database import Database
    from dropscribe.ledger.leases import Leases
    from dropscribe.vocab.states import FileState, JobKey

    Execute = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]

OWE = """
INSERT INTO hooks (path, outcome, inbox, body, held, run, owed) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (path, outcome) DO UPDATE SET inbox = excluded.inbox, body = excluded.body,
    held = excluded.held, run = excluded.run, owed = excluded.owed
"""
# Owed and not waiting for an after: (or its after: row gone), the oldest first; with
# the settings its file's transcript was asked with (owed20: the language rules chose by).
ASKED = "(SELECT j.settings FROM files f JOIN jobs j ON j.key = f.key WHERE f.path = hooks.path)"
DUE = f"""SELECT path, outcome, inbox, body, run, held, owed, {ASKED}
FROM hooks
WHERE (held = ? OR NOT EXISTS (SELECT 1 FROM afters a WHERE a.path = hooks.path))
    AND inbox IN ({{inboxes}}) AND (owed, path, outcome) > (?, ?, ?)
ORDER BY owed, path, outcome LIMIT ?"""  # noqa: S608 - our own SQL
# A held done hook, with its file's job settings as DUE's.
UNHELD = f"""SELECT inbox, body, {ASKED} FROM hooks
WHERE path = ? AND outcome = 'done' AND held = ?"""  # noqa: S608 - our own SQL
# A row taken from a run no longer alive: no row back when another host took it first.
TAKE = (
    "UPDATE hooks SET run = ?, held = ? WHERE path = ? AND outcome = ? AND run = ? RETURNING path"
)
LATE = 100  # rows taken in one look (and in one page of DUE); the rest at the next
# owed20: what status and explain tell: each row's run, and whether it waits for an after:
HELD_NOW = "CASE WHEN held = ? AND EXISTS (SELECT 1 FROM afters a WHERE a.path = hooks.path)"
COUNTED = f"""SELECT inbox, run, now_held, count(*) FROM (
    SELECT inbox, run, {HELD_NOW} THEN 1 ELSE 0 END AS now_held FROM hooks
) h GROUP BY inbox, run, now_held"""  # noqa: S608 - our own SQL
OF_PATH = f"""SELECT outcome, inbox, run, {HELD_NOW} THEN 1 ELSE 0 END, owed FROM hooks
WHERE path = ? ORDER BY owed"""  # noqa: S608 - our own SQL


@dataclass(frozen=True)
class OwedHook:
    """A hook to owe: ``body`` the JSON it gets; ``held`` until its file's after: is done."""

    path: Path
    outcome: str  # done, failed, steps
    inbox: str
    body: dict[str, Any] = field(hash=False)
    held: bool = False


@dataclass(frozen=True)
class OwedRow:
    """A row owed, its path as this host names it; ``language`` the one its file's
    transcript was asked in, as the ledger's job row has it (None: none, or unknown)."""

    path: str
    outcome: str
    inbox: str
    body: dict[str, Any] = field(hash=False)
    language: str | None = None

    def late(self) -> OwedRow:
        """The row with its JSON saying it comes late."""
        return replace(self, body={**self.body, "late": True})


@dataclass(frozen=True)
class HookCounts:
    """An inbox's hooks owed: ``owed`` to run (``late`` of them owed by runs no longer
    alive: the next start or rescan runs them), ``held`` behind a pending after:."""

    owed: int = 0
    late: int = 0
    held: int = 0


@dataclass(frozen=True)
class OwedState:
    """One hook owed for a file, as explain tells it (``late``, ``held``: as above)."""

    outcome: str
    inbox: str
    late: bool
    held: bool
    owed: float


@runtime_checkable
class OwedReads(Protocol):
    """owed20: what ``status`` and ``explain`` read of the hooks owed."""

    def hook_counts(self) -> dict[str, HookCounts]:
        """Each inbox's hooks owed and held (inboxes with none left out)."""

    def hooks_of(self, path: Path) -> list[OwedState]:
        """The hooks owed for ``path``, the oldest first."""


class Owed(Protocol):
    """The hooks owed (``jobs/verdicts.py``, ``steps/hooked.py``, ``outputs/late.py``)."""

    where: str

    def hook_owed(self, owed: OwedHook) -> None:
        """Owe ``owed`` alone (a file quarantined before its content was known)."""

    def record_owing(
        self,
        path: Path,
        inbox: str,
        stat: tuple[int, int, int],
        key: JobKey,
        state: FileState,
        error: str | None,
        owed: OwedHook | None,
    ) -> None:
        """``record_file`` and, in the same write, ``owed``."""

    def hook_unheld(self, path: Path, moved: Path | None) -> OwedRow | None:
        """The pending after: settled and, in the same write, the done hook it held
        taken by this run, with ``moved_to``; None when none was held (a row from before
        hooks20, whose hook ran at done: no second call)."""

    def steps_hook_owed(self, path: Path, shown: str, owed: OwedHook) -> bool:
        """The hook after ``path``'s steps claimed for ``shown`` and, if this is the
        claim that counts, owed in the same write."""

    def hook_ran(self, path: Path | str, outcome: str) -> None:
        """The row goes, unless another run took it meanwhile (owed20: not waited for)."""

    def hook_dropped(self, path: str, outcome: str) -> None:
        """The row goes (its folder has no hook now)."""

    def hooks_late(self, inboxes: set[str]) -> list[OwedRow]:
        """Rows of ``inboxes`` owed by runs no longer alive, and held ones whose after:
        row is gone (dropped by the sweep, or settled by a host that found the recording
        gone), each taken by this run."""


class OwedRows:
    """``Owed`` for a backend with ``_rows``, ``_together``, ``_stored`` and ``_shown``."""

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _stored(self, path: Path | str) -> str:
        raise NotImplementedError

    def _shown(self, text: str) -> str:
        raise NotImplementedError

    def _together(self, fn: Callable[[Execute], Any]) -> Any:
        """``fn`` in one write transaction (``execute(sql, args)`` its rows)."""
        raise NotImplementedError

    _post: Callable[..., None]  # SQLite's GroupCommit.post

    def _soon(self, sql: str, args: tuple[Any, ...]) -> None:
        """owed20: ``sql`` in the next group commit, not waited for (SQLite)."""
        self._post(lambda db: db.execute(sql, args))

    @property
    def hook_run(self) -> str:
        """This process's run (SQLite: pid and start time)."""
        return process_run(os.getpid())

    def _alive(self, runs: set[str]) -> set[str]:
        """Which of ``runs`` are alive (SQLite: a process of this machine)."""
        return {run for run in runs if _process_alive(run)}

    def owe_args(self, owed: OwedHook) -> tuple[Any, ...]:
        """The arguments of ``OWE`` for ``owed``, owed by this run now."""
        body = names.json_text(owed.body)  # a name not UTF-8 kept as \\udcNN
        path = self._stored(owed.path)
        return (path, owed.outcome, owed.inbox, body, owed.held, self.hook_run, time.time())

    def owing(self, sql: str, args: tuple[Any, ...], owed: OwedHook | None) -> None:
        """``sql`` and, in the same write, ``owed`` (if any)."""

        def fn(execute: Execute) -> None:
            execute(sql, args)
            if owed is not None:
                execute(OWE, self.owe_args(owed))

        self._together(fn)

    def hook_owed(self, owed: OwedHook) -> None:
        self._together(_one(OWE, self.owe_args(owed)))

    def record_owing(
        self,
        path: Path,
        inbox: str,
        stat: tuple[int, int, int],
        key: JobKey,
        state: FileState,
        error: str | None,
        owed: OwedHook | None,
    ) -> None:
        from dropscribe.ledger import queries  # noqa: PLC0415 - an import cycle (interface)

        why = names.text(error) if error is not None else None
        row = (self._stored(path), inbox, *stat, key.digest, str(key), state, why)
        self.owing(queries.UPSERT_FILE, (*row, time.time(), None), owed)

    def hook_unheld(self, path: Path, moved: Path | None) -> OwedRow | None:
        where = self._stored(path)

        def fn(execute: Execute) -> OwedRow | None:
            execute("DELETE FROM afters WHERE path = ?", (where,))
            rows = execute(UNHELD, (where, True))
            if not rows:
                return None
            inbox, text, asked = rows[0]
            body = {**json.loads(text), "moved_to": str(moved) if moved else None}
            execute(
                "UPDATE hooks SET body = ?, held = ?, run = ? WHERE path = ? AND outcome = 'done'",
                (names.json_text(body), False, self.hook_run, where),
            )
            return OwedRow(self._shown(where), "done", str(inbox), body, _language(asked))

        row: OwedRow | None = self._together(fn)
        return row

    def steps_hook_owed(self, path: Path, shown: str, owed: OwedHook) -> bool:
        where = self._stored(path)
        token = os.urandom(8).hex()

        def fn(execute: Execute) -> bool:
            execute(CLAIM_HOOK, (where, shown, token, time.time()))
            rows = execute("SELECT token FROM step_hooks WHERE path = ?", (where,))
            if not rows or rows[0][0] != token:
                return False
            execute(OWE, self.owe_args(owed))
            return True

        return bool(self._together(fn))

    def hook_ran(self, path: Path | str, outcome: str) -> None:
        """owed20: the delete rides the next group commit, unwaited: a death before it
        commits (milliseconds) runs the hook once more, late, as at-least-once allows."""
        sql = "DELETE FROM hooks WHERE path = ? AND outcome = ? AND run = ?"
        self._soon(sql, (self._stored(path), outcome, self.hook_run))

    def hook_dropped(self, path: str, outcome: str) -> None:
        sql = "DELETE FROM hooks WHERE path = ? AND outcome = ?"
        self._together(_one(sql, (self._stored(path), outcome)))

    def hooks_late(self, inboxes: set[str]) -> list[OwedRow]:
        sql, after = DUE.format(inboxes=", ".join("?" * len(inboxes))), (-1.0, "", "")
        taken: list[OwedRow] = []
        while inboxes and len(taken) < LATE:  # attack21: page on, past rows live runs owe
            rows = self._rows(sql, (False, *sorted(inboxes), *after, LATE))
            alive = self._alive({str(row[4]) for row in rows})
            for path, outcome, inbox, body, run, held, owed, asked in rows:
                after = (owed, path, outcome)
                if run in alive and not held:  # held, its after: row gone: nobody runs it but us
                    continue
                if self._together(_one(TAKE, (self.hook_run, False, path, outcome, run))):
                    shown = self._shown(path)
                    late = OwedRow(shown, outcome, inbox, json.loads(body), _language(asked))
                    taken.append(late)
            if len(rows) < LATE:
                break
        return taken

    def hook_counts(self) -> dict[str, HookCounts]:
        rows = self._rows(COUNTED, (True,))
        alive = self._alive({str(row[1]) for row in rows})
        counts: dict[str, HookCounts] = {}
        for inbox, run, held, n in rows:
            was = counts.get(inbox, HookCounts())
            if held:
                counts[inbox] = HookCounts(was.owed, was.late, was.held + n)
            else:
                late = was.late + (n if run not in alive else 0)
                counts[inbox] = HookCounts(was.owed + n, late, was.held)
        return counts

    def hooks_of(self, path: Path) -> list[OwedState]:
        rows = self._rows(OF_PATH, (True, self._stored(path)))
        alive = self._alive({str(row[2]) for row in rows})
        return [
            OwedState(outcome, inbox, not held and run not in alive, bool(held), float(owed))
            for outcome, inbox, run, held, owed in rows
        ]


class SharedOwedRows(OwedRows):
    """``Owed`` in a shared ledger: a run is a daemon's (``leases``), alive while it beats."""

    _db: Database
    _leases: Leases

    def _together(self, fn: Callable[[Execute], Any]) -> Any:
        from dropscribe.ledger import queries  # noqa: PLC0415 - as in record_owing

        with self._db.tx() as db:

            def rows(sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
                cur = db.execute(queries.for_psycopg(sql), args)
                return cur.fetchall() if cur.description is not None else []

            return fn(rows)

    @property
    def hook_run(self) -> str:
        return self._leases.run

    def _soon(self, sql: str, args: tuple[Any, ...]) -> None:
        """No group commit to ride: one short transaction whose commit does not wait
        for the WAL's flush (``synchronous_commit`` off for it alone): a server crash in
        the next ~0.6 s may lose it, and the hook then runs once more, late."""
        from dropscribe.ledger import queries  # noqa: PLC0415 - as in record_owing

        with self._db.tx() as db:
            db.execute("SET LOCAL synchronous_commit TO OFF")
            db.execute(queries.for_psycopg(sql), args)

    def _alive(self, runs: set[str]) -> set[str]:
        rows = self._db.rows(
            "SELECT run FROM hosts WHERE run = ANY(%s) AND beat > now() - %s * interval '1s'",
            (sorted(runs), self._leases.lease_seconds),
        )
        return {str(run) for (run,) in rows}


def _language(settings: str | None) -> str | None:
    """The language a job row's settings (``FolderSettings.shaping``) asked in."""
    if not settings:
        return None
    language = json.loads(settings).get("language")
    return language if isinstance(language, str) else None


def _one(sql: str, args: tuple[Any, ...]) -> Callable[[Execute], list[tuple[Any, ...]]]:
    """One statement, for ``_together``."""
    return lambda execute: execute(sql, args)


@functools.cache
def process_run(pid: int) -> str:
    """``pid`` and its start time (clock ticks since boot): a pid used again is another."""
    return f"{pid}:{_started(pid)}"


def _started(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[1].split()[19]


def _process_alive(run: str) -> bool:
    """Whether the process that ``run`` names is still running (a zombie counts as not)."""
    pid, _, started = run.partition(":")
    if not pid.isdigit():
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] != "Z" and fields[19] == started

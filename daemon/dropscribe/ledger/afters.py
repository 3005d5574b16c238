"""done17: a done file whose ``after:`` (move, delete) failed, in the ``afters`` table
(``schema.LAYOUT``): a row per path, the action, the last error, how many tries and
since when. Written as the action fails, removed once it succeeds (or is no longer
wanted); while a row stands, the intake lets the file through at each rescan and at
start, and its job does the action again without a new upload or new sidecars. rows18:
a row whose recording is gone from its inbox (deleted or moved by hand, by another
host) is dropped by the rescan's sweep (``sweep.py``), in one statement.

A backend mixes in ``AfterRows`` and provides ``_rows``, ``_execute``, ``_returning``,
``_stored`` and ``_shown``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pathlib import Path

RECORD = """
INSERT INTO afters (path, inbox, action, error, tries, since, updated)
VALUES (?, ?, ?, ?, 1, ?, ?)
ON CONFLICT (path) DO UPDATE SET inbox = excluded.inbox, action = excluded.action,
    error = excluded.error, tries = afters.tries + 1, updated = excluded.updated
"""
COLUMNS = "path, inbox, action, error, tries, since, updated"
BATCH = 500  # rows18: paths in one DELETE (SQLite takes 32 766 values, PostgreSQL 65 535)


@dataclass(frozen=True)
class AfterRow:
    """A done file's ``after:`` still to be done, and why it is not yet."""

    path: str
    inbox: str
    action: str
    error: str
    tries: int
    since: float
    updated: float


class Afters(Protocol):
    """What a done file's job, the intake and the reports ask of the ledger."""

    where: str  # named when a write fails

    def after_failed(self, path: Path, inbox: str, action: str, error: str) -> None:
        """Keep ``path``'s ``after:`` as pending with ``error``, committed when this returns."""
        ...

    def after_settled(self, path: Path) -> None:
        """``path``'s ``after:`` is done, or no longer wanted: its row goes."""
        ...

    def after_pending(self, path: Path) -> AfterRow | None:
        """``path``'s pending ``after:``, if one is."""
        ...

    def afters_pending(self, limit: int = 1000) -> list[AfterRow]:
        """Every pending ``after:``, the oldest first."""
        ...

    def afters_dropped(self, paths: list[str]) -> list[str]:
        """rows18: the rows of ``paths`` (as ``afters_pending`` shows them) go; the paths
        of those that were still there."""
        ...


class Dropping:
    """rows18: rows of paths deleted in batches, for a backend with ``_returning``,
    ``_stored`` and ``_shown`` (``AfterRows``, ``waits.WaitRows``)."""

    def _returning(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _stored(self, path: Path | str) -> str:
        raise NotImplementedError

    def _shown(self, text: str) -> str:
        raise NotImplementedError

    def _dropped(self, table: str, paths: list[str], before: float | None = None) -> list[str]:
        """``table``'s rows of ``paths`` deleted (with ``before``: only those not written
        since), ``BATCH`` at a time; the paths of the rows that were there."""
        gone: list[str] = []
        for start in range(0, len(paths), BATCH):
            batch = tuple(self._stored(path) for path in paths[start : start + BATCH])
            sql = f"DELETE FROM {table} WHERE path IN ({', '.join('?' * len(batch))})"  # noqa: S608
            args: tuple[Any, ...] = batch
            if before is not None:
                sql, args = sql + " AND updated <= ?", (*batch, before)
            rows = self._returning(sql + " RETURNING path", args)
            gone += [self._shown(str(path)) for (path,) in rows]
        return gone


class AfterRows(Dropping):
    """``Afters`` for a backend with ``_rows``, ``_execute`` and ``Dropping``'s."""

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _execute(self, sql: str, args: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def after_failed(self, path: Path, inbox: str, action: str, error: str) -> None:
        """Upsert the row (its tries counted, its first failure's time kept)."""
        now = time.time()
        self._execute(RECORD, (self._stored(path), inbox, action, error, now, now))

    def after_settled(self, path: Path) -> None:
        """Delete the row (none: nothing to do)."""
        self._execute("DELETE FROM afters WHERE path = ?", (self._stored(path),))

    def after_pending(self, path: Path) -> AfterRow | None:
        """The row, or None."""
        sql = f"SELECT {COLUMNS} FROM afters WHERE path = ?"  # noqa: S608 - constant columns
        rows = self._rows(sql, (self._stored(path),))
        return self._after(rows[0]) if rows else None

    def afters_pending(self, limit: int = 1000) -> list[AfterRow]:
        """The rows, the oldest first."""
        sql = f"SELECT {COLUMNS} FROM afters ORDER BY since, path LIMIT ?"  # noqa: S608
        return [self._after(row) for row in self._rows(sql, (limit,))]

    def afters_dropped(self, paths: list[str]) -> list[str]:
        """One DELETE … RETURNING per ``BATCH`` paths (none: no statement)."""
        return self._dropped("afters", paths)

    def _after(self, row: tuple[Any, ...]) -> AfterRow:
        path, inbox, action, error, tries, since, updated = row
        shown = self._shown(str(path))
        return AfterRow(
            shown, str(inbox), str(action), str(error), int(tries), float(since), float(updated)
        )

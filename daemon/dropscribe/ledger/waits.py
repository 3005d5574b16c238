"""bounds17: what each waiting file's wait was for, in the ``waits`` table
(``schema.LAYOUT``): a row per path, the fingerprint (``vocab/waits.py``) of the settings
its wait hangs on, written as the job ends waiting for a known moment (the files row's
``next_try``). A restarted daemon does not honour a wait whose fingerprint differs from
the settings' now; a path without a row (a wait written by an older version) keeps its
wait, as before. rows18: a row goes at the rescan's sweep (``sweep.py``) once its file no
longer waits (done, failed, its moment past) or is gone: one query reads them all (with
the files row's ``next_try``), one statement deletes them.

A backend mixes in ``WaitRows`` and provides ``_rows``, ``_execute`` and
``afters.Dropping``'s."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from dropscribe.ledger.afters import Dropping
from dropscribe.vocab.waits import moment

if TYPE_CHECKING:
    from pathlib import Path

RECORD = """
INSERT INTO waits (path, reason, updated) VALUES (?, ?, ?)
ON CONFLICT (path) DO UPDATE SET reason = excluded.reason, updated = excluded.updated
"""
READ = "SELECT reason FROM waits WHERE path = ?"
KEPT = """
SELECT waits.path, waits.updated, files.next_try FROM waits
LEFT JOIN files ON files.path = waits.path
"""


class WaitRow(NamedTuple):
    """rows18: a kept wait, as the sweep sees it: its path (as this host names it), when
    it was written, and the moment its file waits for now (None: it waits no more)."""

    path: str
    updated: float
    next_try: float | None


class Waits(Protocol):
    """What a waiting file's job and the intake ask of the ledger."""

    def record_wait(self, path: Path, reason: str) -> None:
        """Keep what ``path``'s wait is for, committed when this returns."""
        ...

    def waited_for(self, path: Path) -> str | None:
        """What ``path``'s last wait was for; None when no wait of it was kept."""
        ...

    def waits_kept(self) -> list[WaitRow]:
        """rows18: every kept wait, with its files row's moment."""
        ...

    def waits_dropped(self, paths: list[str], before: float) -> list[str]:
        """rows18: the rows of ``paths`` not written after ``before`` go; their paths."""
        ...


class WaitRows(Dropping):
    """``Waits`` for a backend with ``_rows``, ``_execute`` and ``Dropping``'s."""

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _execute(self, sql: str, args: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def record_wait(self, path: Path, reason: str) -> None:
        """Upsert the row."""
        self._execute(RECORD, (self._stored(path), reason, time.time()))

    def waited_for(self, path: Path) -> str | None:
        """The row's reason, or None."""
        rows = self._rows(READ, (self._stored(path),))
        return str(rows[0][0]) if rows else None

    def waits_kept(self) -> list[WaitRow]:
        """One query; a moment no dropscribe writes (attack16) reads as None."""
        return [
            WaitRow(self._shown(str(path)), float(updated), moment(next_try))
            for path, updated, next_try in self._rows(KEPT)
        ]

    def waits_dropped(self, paths: list[str], before: float) -> list[str]:
        """One DELETE … RETURNING per ``afters.BATCH`` paths (none: no statement)."""
        return self._dropped("waits", paths, before)

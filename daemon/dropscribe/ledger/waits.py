"""bounds17: what each waiting file's wait was for, in the ``waits`` table
(``schema.LAYOUT``): a row per path, the fingerprint (``vocab/waits.py``) of the settings
its wait hangs on, written as the job ends waiting for a known moment (the files row's
``next_try``). A restarted daemon does not honour a wait whose fingerprint differs from
the settings' now; a path without a row (a wait written by an older version) keeps its
wait, as before.

A backend mixes in ``WaitRows`` and provides ``_rows``, ``_execute`` and ``_stored``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pathlib import Path

RECORD = """
INSERT INTO waits (path, reason, updated) VALUES (?, ?, ?)
ON CONFLICT (path) DO UPDATE SET reason = excluded.reason, updated = excluded.updated
"""
READ = "SELECT reason FROM waits WHERE path = ?"


class Waits(Protocol):
    """What a waiting file's job and the intake ask of the ledger."""

    def record_wait(self, path: Path, reason: str) -> None:
        """Keep what ``path``'s wait is for, committed when this returns."""
        ...

    def waited_for(self, path: Path) -> str | None:
        """What ``path``'s last wait was for; None when no wait of it was kept."""
        ...


class WaitRows:
    """``Waits`` for a backend with ``_rows``, ``_execute`` and ``_stored``."""

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _execute(self, sql: str, args: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def _stored(self, path: Path | str) -> str:
        raise NotImplementedError

    def record_wait(self, path: Path, reason: str) -> None:
        """Upsert the row."""
        self._execute(RECORD, (self._stored(path), reason, time.time()))

    def waited_for(self, path: Path) -> str | None:
        """The row's reason, or None."""
        rows = self._rows(READ, (self._stored(path),))
        return str(rows[0][0]) if rows else None

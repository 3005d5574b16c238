"""done17: the ledger's ``afters`` rows (a done file's pending ``after:``) on both
backends: kept with their tries and first failure, read back, and gone once settled."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pg
from dropscribe.ledger.places import Places
from dropscribe.ledger.postgres import PostgresLedger
from dropscribe.ledger.store import SqliteLedger
from dropscribe.vocab.config import SharedLedger

if TYPE_CHECKING:
    from dropscribe.ledger.afters import Afters

PATH = Path("/srv/in/a.wav")


def _pending_rows(ledger: Afters) -> None:
    assert ledger.after_pending(PATH) is None
    ledger.after_failed(PATH, "calls", "move", "No space left on device")
    ledger.after_failed(PATH, "calls", "move", "Read-only file system")
    row = ledger.after_pending(PATH)
    assert row is not None
    assert (row.path, row.inbox, row.action, row.error, row.tries) == (
        str(PATH),
        "calls",
        "move",
        "Read-only file system",
        2,
    )
    assert row.since <= row.updated
    assert ledger.afters_pending() == [row]
    ledger.after_settled(PATH)
    ledger.after_settled(PATH)  # none: nothing to do
    assert ledger.after_pending(PATH) is None
    assert ledger.afters_pending() == []


def test_sqlite_keeps_a_pending_after_until_it_is_settled(tmp_path: Path) -> None:
    """SQLite: the last error and the count of tries kept, the row gone once settled."""
    ledger = SqliteLedger(tmp_path / "state" / "ledger.db")
    try:
        _pending_rows(ledger)
    finally:
        ledger.close()


def test_postgres_keeps_a_pending_after_until_it_is_settled(pg_url: str) -> None:
    """PostgreSQL: the same, its path kept relative to the inbox and shown back whole."""
    ledger = PostgresLedger(
        SharedLedger(pg_url, pg.PASSWORD, "a", 30.0), Places([("calls", Path("/srv/in"))])
    )
    try:
        _pending_rows(ledger)
    finally:
        ledger.close()

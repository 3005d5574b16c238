"""review17b: SQLite's own "database is locked" (another process holding a write
transaction, as a ``sqlite3`` shell left in ``BEGIN IMMEDIATE`` holds it) told apart and
its holder named; the daemon and ``retry`` held by it are tested beside the write turn
(tests/test_lock17_held.py)."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest

from dropscribe.ledger import locked
from test_lock17_held import TRANSACTION, holding

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow


def test_busy_and_writer_name_sqlites_own_lock_and_its_holder(tmp_path: Path) -> None:
    """locked.busy tells SQLite's "database is locked" (and the ledger's error made of it)
    from other errors; locked.writer names the process holding the WAL write lock."""
    database = tmp_path / "ledger.sqlite3"
    db = sqlite3.connect(database, isolation_level=None, timeout=0)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE files (error TEXT)")
    with holding(database, TRANSACTION) as holder:
        assert locked.writer(database) == holder.pid
        with pytest.raises(sqlite3.OperationalError) as caught:
            db.execute("BEGIN IMMEDIATE")
        assert locked.busy(caught.value)
        assert locked.busy(locked.unavailable(caught.value, database).__cause__ or caught.value)
    assert locked.writer(database) is None
    assert not locked.busy(sqlite3.OperationalError("database is locked"))  # not SQLite's
    with pytest.raises(sqlite3.OperationalError) as other:
        db.execute("SELECT * FROM nowhere")
    assert not locked.busy(other.value)
    db.close()

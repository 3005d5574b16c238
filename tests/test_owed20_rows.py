"""owed20: a hook's row goes without its thread waiting for the commit: on SQLite the
delete rides the next group commit (a death before it runs the hook once more, late,
as at-least-once allows), and a clean close commits it."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

from dropscribe.ledger.owed import OwedHook
from dropscribe.ledger.store import LEDGER_NAME, SqliteLedger

PATH = Path("/srv/in/a.wav")


def test_the_delete_of_a_ran_hook_does_not_wait_for_the_ledger(tmp_path: Path) -> None:
    """hook_ran returns while another connection holds the database's write lock (the
    commit it rides is still to come); once the lock is let go and the ledger closed,
    the row is gone."""
    where = tmp_path / LEDGER_NAME
    ledger = SqliteLedger(where)
    ledger.hook_owed(OwedHook(PATH, "done", "calls", {"file": str(PATH)}))
    other = sqlite3.connect(where, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the write lock, as another process's write holds it
    ran = threading.Thread(target=ledger.hook_ran, args=(PATH, "done"))
    try:
        ran.start()
        ran.join(timeout=10)
        returned = not ran.is_alive()
    finally:
        other.rollback()
        other.close()
        ran.join()
        ledger.close()
    assert returned, "hook_ran waited for the ledger's commit"
    with contextlib.closing(sqlite3.connect(where)) as db:
        assert db.execute("SELECT count(*) FROM hooks").fetchone() == (0,)

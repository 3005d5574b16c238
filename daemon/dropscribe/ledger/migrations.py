"""The ledger's layout versions, and the steps from each to the next.

The version lives in SQLite's ``user_version``. A ledger made before versions were
kept reads 0 and has the layout of version 1. ``MIGRATIONS[n]`` turns version n into
n + 1: a new column is added there, never by editing ``store.SCHEMA`` alone (which
only creates what is missing). A ledger from a later dropscribe is refused, not guessed at.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 1
MIGRATIONS: dict[int, tuple[str, ...]] = {0: ()}


class LedgerTooNewError(sqlite3.DatabaseError):
    """The ledger was written by a later dropscribe, whose layout this one does not know."""


def migrate(db: sqlite3.Connection) -> None:
    """Bring the ledger open in ``db`` to SCHEMA_VERSION, in the caller's transaction."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise LedgerTooNewError(
            f"the ledger was written by a newer dropscribe (layout {version}; this one"
            f" knows up to {SCHEMA_VERSION}): upgrade dropscribe, or use another state_dir"
        )
    for step in range(version, SCHEMA_VERSION):
        for statement in MIGRATIONS[step]:
            db.execute(statement)
    if version != SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")

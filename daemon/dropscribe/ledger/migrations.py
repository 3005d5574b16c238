"""The ledger's layout version, and bringing a ledger to it: one scheme for both backends.

The version is ``schema.LAYOUT.version``, kept in the ``meta`` table (``name =
'schema'``) by SQLite and PostgreSQL alike; SQLite keeps it as ``user_version`` too,
which is where dropscribes before the ``meta`` table kept and read it (so they refuse
a later layout as this one does). A ledger made before versions were kept reads 0 and
has the layout of version 1. A ledger from a later dropscribe is refused
(``LedgerTooNew``), not guessed at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dropscribe.errors import LedgerTooNew
from dropscribe.ledger import fulltext
from dropscribe.ledger.schema import LAYOUT, Dialect, Layout

if TYPE_CHECKING:
    from collections.abc import Callable

    # one statement (``?`` placeholders) and its rows (none for DDL)
    Execute = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]

SCHEMA_VERSION = LAYOUT.version

_EXISTS = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?"
_SET_VERSION = (
    "INSERT INTO meta (name, value) VALUES ('schema', ?)"
    " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)


def stored_version(execute: Execute, dialect: Dialect) -> int | None:
    """The layout the ledger says it has; None where it holds no ledger yet."""
    version = 0
    if dialect is Dialect.SQLITE:
        ((version,),) = execute("PRAGMA user_version", ())
    if _exists(execute, dialect, "meta"):
        rows = execute("SELECT value FROM meta WHERE name = 'schema'", ())
        version = max([version, *(int(value) for (value,) in rows)])
    if not version and not _exists(execute, dialect, "jobs"):
        return None
    return int(version)


def migrate(execute: Execute, dialect: Dialect, where: str, layout: Layout = LAYOUT) -> int:
    """Bring the ledger to ``layout`` in the caller's transaction (which keeps others
    out meanwhile); return the version it had (``layout.version`` when it was new).
    Raise LedgerTooNew, changing nothing, when it is later than ``layout``."""
    found = stored_version(execute, dialect)
    if found is not None and found > layout.version:
        raise LedgerTooNew(
            f"the ledger at {where} was written by a newer dropscribe (layout {found}; this"
            f" one knows up to {layout.version}): upgrade dropscribe, or use another ledger"
        )
    if found is not None:  # steps first: a fresh table below may index what they add
        for version in range(found, layout.version):
            for step in layout.steps.get(version, ()):
                for statement in layout.step_ddl(step, dialect):
                    execute(statement, ())
    for statement in layout.ddl(dialect):
        execute(statement, ())
    fulltext.prepare(execute, dialect, fresh=found is None)  # the search index (once)
    kept = execute("SELECT value FROM meta WHERE name = 'schema'", ())
    if kept != [(str(layout.version),)]:
        execute(_SET_VERSION, (str(layout.version),))
    if dialect is Dialect.SQLITE and execute("PRAGMA user_version", ()) != [(layout.version,)]:
        execute(f"PRAGMA user_version = {layout.version:d}", ())  # for those reading only this
    return layout.version if found is None else found


def _exists(execute: Execute, dialect: Dialect, table: str) -> bool:
    if dialect is Dialect.SQLITE:  # its columns, if any (a pragma: nothing is scanned)
        return bool(execute(f"PRAGMA table_info({table})", ()))
    ((count,),) = execute(_EXISTS, (table,))
    return bool(count)

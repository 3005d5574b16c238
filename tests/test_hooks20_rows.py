"""hooks20: the ledger's ``hooks`` rows on both backends. A row owed by a live run is
left to it; one owed by a run that ended is taken by the first look, and by no second
one; a done file's hook held for its pending after: is given back, with where the
recording went, by the write that settles the after:, and a pending after: without a
held hook (written before hooks20) gives none."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

import pg
from dropscribe.ledger import afters, migrations
from dropscribe.ledger.owed import OwedHook
from dropscribe.ledger.places import Places
from dropscribe.ledger.postgres import PostgresLedger
from dropscribe.ledger.queries import for_psycopg
from dropscribe.ledger.schema import LAYOUT, Dialect, Layout
from dropscribe.ledger.store import SqliteLedger
from dropscribe.vocab.config import SharedLedger

if TYPE_CHECKING:
    from dropscribe.ledger.interface import Ledger

PATH = Path("/srv/in/a.wav")
BODY: dict[str, Any] = {"file": str(PATH), "outcome": "done", "late": False}

# Another process owes a hook in the SQLite ledger at argv[1], then ends.
OWES_AND_ENDS = """
import sys
from pathlib import Path
from dropscribe.ledger.owed import OwedHook
from dropscribe.ledger.store import SqliteLedger
ledger = SqliteLedger(Path(sys.argv[1]))
ledger.hook_owed(OwedHook(Path("/srv/in/b.wav"), "failed", "calls", {"file": "b"}))
ledger.close()
"""


def _held(ledger: Ledger) -> None:
    """A held hook: not due while its after: is pending; given back when it is settled."""
    ledger.after_failed(PATH, "calls", "move", "No space left on device")
    ledger.hook_owed(OwedHook(PATH, "done", "calls", BODY, held=True))
    assert ledger.hooks_late({"calls"}) == []
    row = ledger.hook_unheld(PATH, Path("/srv/done/a.wav"))
    assert row is not None
    assert (row.path, row.outcome, row.body["moved_to"]) == (str(PATH), "done", "/srv/done/a.wav")
    assert ledger.after_pending(PATH) is None
    ledger.hook_ran(row.path, row.outcome)
    assert ledger.hooks_late({"calls"}) == []
    ledger.after_failed(PATH, "calls", "move", "No space left on device")  # before hooks20
    assert ledger.hook_unheld(PATH, None) is None
    assert ledger.after_pending(PATH) is None


def _dropped(ledger: Ledger) -> None:
    """A held hook whose after: row went another way (the sweep) is due, whoever owes it."""
    ledger.after_failed(PATH, "calls", "move", "No space left on device")
    ledger.hook_owed(OwedHook(PATH, "done", "calls", BODY, held=True))
    ledger.after_settled(PATH)
    (row,) = ledger.hooks_late({"calls"})
    assert row.body == BODY
    assert row.late().body == {**BODY, "late": True}
    ledger.hook_ran(row.path, row.outcome)


def test_sqlite_takes_a_dead_processs_hook_and_leaves_a_live_ones(tmp_path: Path) -> None:
    """SQLite: this process's row stays its own; one owed by a process that ended is
    taken once (a second look finds none, the row now this process's)."""
    where = tmp_path / "state" / "ledger.db"
    ledger = SqliteLedger(where)
    try:
        ledger.hook_owed(OwedHook(PATH, "done", "calls", BODY))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        subprocess.run([sys.executable, "-c", OWES_AND_ENDS, str(where)], check=True, env=env)
        (row,) = ledger.hooks_late({"calls"})
        assert (row.path, row.outcome, row.body) == ("/srv/in/b.wav", "failed", {"file": "b"})
        assert ledger.hooks_late({"calls"}) == []
        assert ledger.hooks_late({"other"}) == []
        ledger.hook_ran(row.path, row.outcome)
        ledger.hook_ran(PATH, "done")
        _held(ledger)
        _dropped(ledger)
    finally:
        ledger.close()


def test_postgres_hosts_take_a_dead_hosts_hook_once(pg_url: str) -> None:
    """PostgreSQL: a host's row stays its own while it beats; once it is gone, one of the
    two hosts looking takes it, the other finds none."""
    hosts = [
        PostgresLedger(
            SharedLedger(pg_url, pg.PASSWORD, name, 30.0), Places([("calls", Path("/srv/in"))])
        )
        for name in "abc"
    ]
    gone, b, c = hosts
    try:
        gone.hook_owed(OwedHook(PATH, "done", "calls", BODY))
        assert b.hooks_late({"calls"}) == []
        gone.close()  # its heartbeat row goes with it
        (row,) = b.hooks_late({"calls"})
        assert (row.path, row.body) == (str(PATH), BODY)
        assert c.hooks_late({"calls"}) == []
        b.hook_ran(row.path, row.outcome)
        _held(c)
        _dropped(c)
    finally:
        for ledger in (b, c):
            ledger.close()


def _layout_2() -> Layout:
    """The layout before hooks20: no hooks table."""
    return Layout(
        version=2,
        tables=tuple(t for t in LAYOUT.tables if t.name != "hooks"),
        sequences=LAYOUT.sequences,
        steps={n: s for n, s in LAYOUT.steps.items() if n < 2},
    )


def _migrated(ledger: Ledger) -> None:
    """Opened by this dropscribe: its pending after: kept, holding no hook."""
    (row,) = ledger.afters_pending()
    assert row.path == str(PATH)
    assert ledger.hooks_late({"calls"}) == []
    assert ledger.hook_unheld(PATH, Path("/srv/done/a.wav")) is None  # its hook ran at done
    assert ledger.after_pending(PATH) is None


def test_a_sqlite_ledger_of_layout_2_gets_the_hooks_table(tmp_path: Path) -> None:
    """SQLite, layout 2 -> 3: the hooks table made, the pending after: kept, no hook held."""
    where = tmp_path / "ledger.db"
    with contextlib.closing(sqlite3.connect(where, isolation_level=None)) as db:

        def execute(sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            return db.execute(sql, args).fetchall()

        migrations.migrate(execute, Dialect.SQLITE, "t", _layout_2())
        db.execute(afters.RECORD, (str(PATH), "calls", "move", "No space left on device", 1, 1))
        assert not db.execute("PRAGMA table_info(hooks)").fetchall()
    ledger = SqliteLedger(where)
    try:
        _migrated(ledger)
    finally:
        ledger.close()
    with contextlib.closing(sqlite3.connect(where)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (3,)


def test_a_postgres_ledger_of_layout_2_gets_the_hooks_table(pg_url: str) -> None:
    """PostgreSQL, layout 2 -> 3: the same; its path kept relative to the inbox."""
    with psycopg.connect(pg_url, password=pg.PASSWORD, autocommit=True) as db:

        def execute(sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            cur = db.execute(for_psycopg(sql), args)
            return cur.fetchall() if cur.description is not None else []

        migrations.migrate(execute, Dialect.POSTGRES, "t", _layout_2())
        db.execute(for_psycopg(afters.RECORD), ("@calls/a.wav", "calls", "move", "full", 1, 1))
    ledger = PostgresLedger(
        SharedLedger(pg_url, pg.PASSWORD, "a", 30.0), Places([("calls", Path("/srv/in"))])
    )
    try:
        _migrated(ledger)
    finally:
        ledger.close()
    with psycopg.connect(pg_url, password=pg.PASSWORD) as db:
        assert db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchall() == [("3",)]

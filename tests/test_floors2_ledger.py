"""The ledger's seam: one schema for both backends, ledgers made by the code before it
opened and kept, backend errors leaving ledger/ as ours, and callers typed by role."""

from __future__ import annotations

import ast
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from conftest import DaemonProcess, make_wav
from dropscribe import errors
from dropscribe.ledger import migrations
from dropscribe.ledger.schema import (
    LAYOUT,
    AddColumn,
    AddIndex,
    Column,
    Dialect,
    Index,
    Layout,
    Table,
    Type,
)
from dropscribe.ledger.store import LEDGER_NAME, SqliteLedger
from dropscribe.vocab.states import JobKey

PACKAGE = Path(errors.__file__).parent

# The DDL of dropscribe before the shared schema (main at 38bd65c, ledger/store.py and
# ledger/postgres.py), kept verbatim: the ledgers that exist today were made with it.
MAIN_SQLITE = """
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, settings TEXT NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    status INTEGER, request_id TEXT, result TEXT, created REAL NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, inbox TEXT NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    key TEXT NOT NULL, state TEXT NOT NULL, formats TEXT NOT NULL DEFAULT '',
    outputs TEXT NOT NULL DEFAULT '[]', error TEXT, updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_state ON files (state, updated);
CREATE TABLE IF NOT EXISTS sidecars (path TEXT PRIMARY KEY, source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    key TEXT NOT NULL, idx INTEGER NOT NULL, start REAL NOT NULL, end REAL NOT NULL,
    cut REAL NOT NULL, pause INTEGER NOT NULL, result TEXT, request_id TEXT,
    PRIMARY KEY (key, idx)
);
CREATE TABLE IF NOT EXISTS capabilities (
    endpoint TEXT NOT NULL, model TEXT NOT NULL, param TEXT NOT NULL, value TEXT NOT NULL,
    verdict TEXT NOT NULL, reason TEXT, updated REAL NOT NULL,
    PRIMARY KEY (endpoint, model, param, value)
);
PRAGMA user_version = 1;
"""
MAIN_POSTGRES = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, settings TEXT NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    status INTEGER, request_id TEXT, result TEXT, created DOUBLE PRECISION NOT NULL,
    updated DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, inbox TEXT NOT NULL, size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL, inode BIGINT NOT NULL, fingerprint TEXT NOT NULL,
    key TEXT NOT NULL, state TEXT NOT NULL, formats TEXT NOT NULL DEFAULT '',
    outputs TEXT NOT NULL DEFAULT '[]', error TEXT, updated DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS files_state ON files (state, updated);
CREATE TABLE IF NOT EXISTS sidecars (path TEXT PRIMARY KEY, source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    key TEXT NOT NULL, idx INTEGER NOT NULL, start DOUBLE PRECISION NOT NULL,
    "end" DOUBLE PRECISION NOT NULL, cut DOUBLE PRECISION NOT NULL, pause BOOLEAN NOT NULL,
    result TEXT, request_id TEXT, PRIMARY KEY (key, idx)
);
CREATE TABLE IF NOT EXISTS capabilities (
    endpoint TEXT NOT NULL, model TEXT NOT NULL, param TEXT NOT NULL, value TEXT NOT NULL,
    verdict TEXT NOT NULL, reason TEXT, updated DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (endpoint, model, param, value)
);
CREATE SEQUENCE IF NOT EXISTS claim_tokens;
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY, host TEXT NOT NULL, run TEXT NOT NULL, token BIGINT NOT NULL,
    path TEXT NOT NULL, claimed TIMESTAMPTZ NOT NULL, expires TIMESTAMPTZ NOT NULL,
    previous TEXT
);
CREATE INDEX IF NOT EXISTS claims_run ON claims (run);
CREATE TABLE IF NOT EXISTS hosts (
    run TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, version TEXT NOT NULL,
    started TIMESTAMPTZ NOT NULL, beat TIMESTAMPTZ NOT NULL
);
INSERT INTO meta VALUES ('schema', '1');
"""
KEY = JobKey("a" * 64, "b" * 16)
ROWS = [
    (
        "INSERT INTO jobs VALUES ('{k}', '{d}', '{{}}', 'done', 1, NULL, 200, 'req_1',"
        ' \'{{"text": "kept"}}\', 1.0, 2.0)'
    ),
    (
        "INSERT INTO files VALUES ('/in/a.wav', 'in', 1, 2, 3, '{d}', '{k}', 'done', 'txt',"
        " '[\"/in/a.txt\"]', NULL, 2.0)"
    ),
    "INSERT INTO sidecars VALUES ('/in/a.txt', '/in/a.wav')",
    (
        "INSERT INTO capabilities VALUES ('http://x', 'whisper-1', 'prompt', 'yes', 'refused',"
        " 'no', 3.0)"
    ),
]


def main_sqlite(path: Path) -> None:
    """A SQLite ledger as dropscribe before the shared schema made and filled it."""
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(MAIN_SQLITE)
        for sql in ROWS:
            db.execute(sql.format(k=KEY, d=KEY.digest))
    db.close()


def columns_sqlite(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Each table's columns as SQLite reads them: name, type, not null, default, key."""
    db = sqlite3.connect(path)
    names = [t.name for t in LAYOUT.in_(Dialect.SQLITE) if t.name != "meta"]
    found = {n: [r[1:] for r in db.execute(f"PRAGMA table_info({n})")] for n in names}
    db.close()
    return found


def kept(ledger: Any) -> None:
    """What ``ROWS`` wrote reads back through the ledger's own methods."""
    job = ledger.job(KEY)
    assert job is not None
    assert (job.state, job.result) == ("done", {"text": "kept"})
    row = ledger.file(Path("/in/a.wav"))
    assert row is not None
    assert (row.key, row.formats) == (KEY, "txt")
    assert ledger.owner_of(Path("/in/a.txt")) == "/in/a.wav"
    assert ledger.capabilities_with("refused") == [("http://x", "whisper-1", "prompt", "yes", "no")]


def test_a_sqlite_ledger_made_before_the_shared_schema_opens_with_its_rows(tmp_path):
    """A SQLite ledger made with the former DDL opens: its rows read back, writes work,
    its version is in meta (and user_version), and its columns are the schema's."""
    path = tmp_path / "old" / LEDGER_NAME
    path.parent.mkdir()
    main_sqlite(path)
    ledger = SqliteLedger(path)
    try:
        kept(ledger)
        ledger.record_capability("http://x", "whisper-1", "language", "en", "taken", None)
        assert ledger.capabilities("http://x", "whisper-1")
    finally:
        ledger.close()
    db = sqlite3.connect(path)
    version = migrations.SCHEMA_VERSION  # until16: 2, files' next_try; hooks20: 3, hooks
    assert db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchall() == [
        (f"{version}",)
    ]
    assert db.execute("PRAGMA user_version").fetchone() == (version,)
    db.close()
    fresh = tmp_path / "new" / LEDGER_NAME
    SqliteLedger(fresh).close()
    old, new = columns_sqlite(path), columns_sqlite(fresh)
    for table, cols in old.items():  # the same columns, types, defaults and keys
        assert [(n, t, d, k) for n, t, _, d, k in cols] == [
            (n, t, d, k) for n, t, _, d, k in new[table]
        ], table


def test_a_postgres_ledger_made_before_the_shared_schema_opens_with_its_rows(pg_url):
    """A PostgreSQL ledger made with the former DDL opens: rows read back, its version
    stays in meta, and every column has the type the schema renders."""
    psycopg = pytest.importorskip("psycopg")
    import pg
    from dropscribe.ledger.places import Places
    from dropscribe.ledger.postgres import PostgresLedger
    from dropscribe.vocab.config import SharedLedger

    with psycopg.connect(pg_url, password=pg.PASSWORD, autocommit=True) as db:
        for statement in MAIN_POSTGRES.split(";"):
            if statement.strip():
                db.execute(statement)
        for sql in ROWS:
            db.execute(sql.format(k=KEY, d=KEY.digest))
    ledger = PostgresLedger(SharedLedger(pg_url, pg.PASSWORD, "h", 30.0), Places([]))
    try:
        kept(ledger)
        with ledger.hold(KEY, Path("/in/a.wav")) as claim:
            assert claim.token > 0
    finally:
        ledger.close()
    with psycopg.connect(pg_url, password=pg.PASSWORD) as db:
        version = f"{migrations.SCHEMA_VERSION}"  # hooks20: migrated to 3
        assert db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchall() == [(version,)]
        found = db.execute(
            "SELECT table_name, column_name, upper(data_type), is_nullable FROM"
            " information_schema.columns WHERE table_schema = current_schema()"
        ).fetchall()
    spelled = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}  # as information_schema says it
    for table in LAYOUT.tables:
        for column in table.columns:
            (row,) = [r for r in found if r[:2] == (table.name, column.name)]
            named = column.type.named(Dialect.POSTGRES)
            assert row[2] == spelled.get(named, named), (table.name, column.name, row)
            assert (row[3] == "NO") == column.required, (table.name, column.name)


# A later layout: one column and one index more, as a future dropscribe adds them.
LATER = Layout(
    version=LAYOUT.version + 1,
    tables=(
        *(t for t in LAYOUT.tables if t.name != "files"),
        Table(
            "files",
            (*LAYOUT.table("files").columns, Column("status", Type.INT)),
            key=("path",),
            indexes=(*LAYOUT.table("files").indexes, Index("files_status", ("status",))),
        ),
    ),
    sequences=LAYOUT.sequences,
    steps={
        **LAYOUT.steps,
        LAYOUT.version: (AddColumn("files", "status"), AddIndex("files", "files_status")),
    },
)


def test_a_step_of_a_later_layout_is_applied_to_a_former_ledger_once(tmp_path):
    """A layout's steps turn a ledger made by the former DDL into the later one (its rows
    kept), once; a ledger of that later layout is then refused by this one."""
    path = tmp_path / LEDGER_NAME
    main_sqlite(path)
    db = sqlite3.connect(path, isolation_level=None)

    def execute(sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return db.execute(sql, args).fetchall()

    assert migrations.migrate(execute, Dialect.SQLITE, "t", LATER) == 1
    assert migrations.migrate(execute, Dialect.SQLITE, "t", LATER) == LATER.version  # done
    assert [r[1] for r in db.execute("PRAGMA table_info(files)")][-1] == "status"
    assert db.execute("SELECT count(*) FROM files").fetchone() == (1,)
    assert "files_status" in {r[1] for r in db.execute("PRAGMA index_list(files)")}
    said = f"layout {LATER.version}; this one knows up to {LAYOUT.version}"  # hooks20: 4, 3
    with pytest.raises(errors.LedgerTooNew, match=said):
        migrations.migrate(execute, Dialect.SQLITE, "t")
    db.close()


def test_sqlite_errors_leave_the_ledger_as_ledger_errors(tmp_path):
    """A file that is no database, and a write the database refuses, raise LedgerError
    with SQLite's own error as the cause."""
    bad = tmp_path / "bad" / LEDGER_NAME
    bad.parent.mkdir()
    bad.write_bytes(b"not a database, just bytes " * 100)
    with pytest.raises(errors.LedgerError) as opened:
        SqliteLedger(bad)
    assert isinstance(opened.value.__cause__, sqlite3.Error)
    ledger = SqliteLedger(tmp_path / "good" / LEDGER_NAME)
    try:
        with pytest.raises(errors.LedgerError) as refused:
            ledger._write(lambda db: db.execute("INSERT INTO nowhere VALUES (1)"))
        assert "no such table" in str(refused.value)
    finally:
        ledger.close()


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_only_the_ledger_imports_its_databases_drivers():
    """No module outside ledger/ imports sqlite3, psycopg or psycopg_pool: their errors
    are mapped at the seam."""
    drivers = {"sqlite3", "psycopg", "psycopg_pool"}
    outside = {
        str(path.relative_to(PACKAGE)): _imports(path) & drivers
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "ledger"
    }
    assert {name: found for name, found in outside.items() if found} == {}


def test_callers_type_against_a_role_not_the_whole_ledger():
    """Outside ledger/, only the service (which opens it and hands out the roles) names
    the whole ``Ledger`` protocol."""
    naming = set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "ledger":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module == "dropscribe.ledger.interface"
                and "Ledger" in {alias.name for alias in node.names}
            ):
                naming.add(str(rel))
    assert naming == {"service.py"}


def test_a_ledger_made_before_the_shared_schema_serves_the_daemon(setup, tmp_path):
    """The real daemon, on a SQLite ledger in the former layout, knows what it holds: a
    copy of a transcribed recording is not uploaded again, and status reads it."""
    setup.data["processes"] = 1
    make_wav(setup.inbox / "a.wav", seconds=0.6)
    first = DaemonProcess(setup, command="once")
    assert first.wait() == 0
    assert len(setup.api.uploads) == 1
    # the same rows in a ledger laid out as the former DDL laid it out
    made = setup.state / LEDGER_NAME
    former = tmp_path / "former.sqlite3"
    with closing(sqlite3.connect(former)) as db, db:
        db.executescript(MAIN_SQLITE)
        db.execute("ATTACH ? AS now", (str(made),))
        for table in ("jobs", "files", "sidecars", "chunks", "capabilities"):
            former_columns = ", ".join(
                f'"{c[1]}"' for c in db.execute(f"PRAGMA table_info({table})")
            )
            db.execute(f"INSERT INTO {table} SELECT {former_columns} FROM now.{table}")
    db.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{made}{suffix}").unlink(missing_ok=True)
    shutil.move(former, made)
    shutil.copy(setup.inbox / "a.wav", setup.inbox / "b.wav")
    second = DaemonProcess(setup, command="once")
    assert second.wait() == 0
    assert len(setup.api.uploads) == 1  # b.wav's transcript came from the ledger
    assert second.named("transcript.reused")
    assert (setup.inbox / "b.txt").exists()
    status = DaemonProcess(setup, command="status")
    assert status.wait() == 0
    with closing(sqlite3.connect(made)) as db, db:
        version = f"{migrations.SCHEMA_VERSION}"  # hooks20: migrated to 3
        assert db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchall() == [(version,)]
    db.close()

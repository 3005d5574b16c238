"""until16: a ledger written by the dropscribe before the files table's ``next_try`` (commit
``BEFORE``, run as itself) gets the column when this one opens it, keeps its rows, and
then keeps a waiting file's moment there; SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from typing import Any

import psycopg
import pytest

import pg
from conftest import DaemonProcess, make_wav, old_package
from dropscribe.ledger import migrations
from fakeapi import openai_error

pytestmark = pytest.mark.slow

BEFORE = "05d8c039c61934ace4780a0fb5a7d1658dda19c0"  # main before until16 (layout 1)

# Run by the old code: a file that waits, as its daemon recorded one (the moment only in
# the error's words), and one done.
WRITE = """
import sys
from pathlib import Path
from dropscribe.ledger.schema import LAYOUT
from dropscribe.vocab.states import FileState, JobKey
assert LAYOUT.version == 1, "not the old code"
if sys.argv[1] == "sqlite":
    from dropscribe.ledger.store import SqliteLedger
    ledger = SqliteLedger(Path(sys.argv[2]))
else:
    from dropscribe.ledger.places import Places
    from dropscribe.ledger.postgres import PostgresLedger
    from dropscribe.vocab.config import SharedLedger
    ledger = PostgresLedger(
        SharedLedger(sys.argv[2], sys.argv[3], "old", 30.0),
        Places([("inbox", Path(sys.argv[4]))]),
        daemon=False,
    )
inbox = Path(sys.argv[4])
waits, done = JobKey("a" * 64, "s" * 16), JobKey("b" * 64, "s" * 16)
said = "waiting: budget reached; tried again at 2026-12-07T00:00:00+00:00"
ledger.record_file(inbox / "old.wav", "inbox", (1, 10**18, 1), waits.digest, waits, FileState.ERROR, said)
ledger.record_file(inbox / "done.wav", "inbox", (1, 10**18, 2), done.digest, done, FileState.DONE)
ledger.close()
"""


def columns_and_version(kind: str, where: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The files table's columns and the layout version the ledger keeps."""
    sql = "SELECT value FROM meta WHERE name = 'schema'"
    if kind == "sqlite":
        with closing(sqlite3.connect(where)) as db:
            names = [row[1] for row in db.execute("PRAGMA table_info(files)")]
            return names, db.execute(sql).fetchall()
    with psycopg.connect(where, password=pg.PASSWORD) as db:
        found = db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema ="
            " current_schema() AND table_name = 'files' ORDER BY ordinal_position"
        ).fetchall()
        return [name for (name,) in found], db.execute(sql).fetchall()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_old_ledger_gets_the_column_and_keeps_a_moment_in_it(setup, request, kind):
    """The new daemon opens the old code's ledger: next_try is added (layout 2), the moment
    of a file it is asked to hold for an hour is kept there and status gives it; the old
    waiting row reads back, without a moment."""
    old = old_package(BEFORE, setup.root / "old")
    if kind == "sqlite":
        setup.state.mkdir()
        where = str(setup.state / "ledger.sqlite3")
        args = ["sqlite", where, "", str(setup.inbox)]
    else:
        where = request.getfixturevalue("pg_url")
        secret = setup.root / "ledger.password"
        secret.write_text(pg.PASSWORD)
        setup.data["ledger"] = {"url": where, "password_file": str(secret)}
        args = ["postgresql", where, pg.PASSWORD, str(setup.inbox)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env["PYTHONPATH"] = str(old)
    subprocess.run([sys.executable, "-c", WRITE, *args], env=env, check=True, timeout=120)
    assert "next_try" not in columns_and_version(kind, where)[0]

    setup.data["rescan_seconds"] = 3600
    setup.api.script.append(
        openai_error(
            429, "Rate limit reached", code="rate_limit_exceeded", **{"Retry-After": "3600"}
        )
    )
    held = make_wav(setup.inbox / "held.wav", seconds=0.5)
    proc = DaemonProcess(setup)
    try:
        proc.wait_event("file.waiting", timeout=30)
        [said] = proc.named("file.waiting")
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(30)
    names, version = columns_and_version(kind, where)
    assert names[-1] == "next_try"
    assert version == [(f"{migrations.SCHEMA_VERSION}",)]

    found = setup.command("status", "--json")
    assert found.returncode == 0, found.stderr
    files = {f["path"]: f for f in json.loads(found.stdout)["files"]}
    assert files[str(held)]["next_try"] == said["until"]
    before = files[str(setup.inbox / "old.wav")]
    assert before["state"] == "waiting"
    assert "next_try" not in before  # its moment was only in its words

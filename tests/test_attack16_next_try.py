"""attack16: a files row's ``next_try`` that no dropscribe of ours writes (NaN, infinity,
a moment past the calendar's end, words), as another host or an old version may leave it
in a shared ledger: the daemon neither dies nor waits for it, and status and explain
answer; SQLite and PostgreSQL, through the real dropscribe process and fake API."""

from __future__ import annotations

import json
import signal
import sqlite3
from contextlib import closing
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

import pg
from conftest import DaemonProcess, make_wav, wait_for
from test_until16 import LONG, asks_for_a_pause, waited

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

# What another writer may leave: each a value the column takes (SQLite keeps words too).
BAD = ["NaN", "Infinity", "-Infinity", "1e300", "-1e300"]


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, setup: Any) -> Any:
    """One worker, rescans an hour apart, the ledger in SQLite or the real PostgreSQL."""
    setup.data["rescan_seconds"] = 3600
    setup.data["workers"] = 1
    setup.backend = request.param
    if request.param == "postgresql":
        secret = setup.root / "ledger.password"
        secret.write_text(pg.PASSWORD)
        setup.url = request.getfixturevalue("pg_url")
        setup.data["ledger"] = {"url": setup.url, "password_file": str(secret)}
    return setup


def overwrite(site: Any, value: str) -> None:
    """Another writer sets every files row's next_try to ``value``."""
    if site.backend == "sqlite":
        with closing(sqlite3.connect(site.state / "ledger.sqlite3")) as db, db:
            number: object = value
            try:
                number = float(value)
            except ValueError:
                number = value
            db.execute("UPDATE files SET next_try = ?", (number,))
        return
    with psycopg.connect(site.url, password=pg.PASSWORD) as db:
        db.execute("UPDATE files SET next_try = %s::double precision", (value,))


def check(site: Any, held: Path) -> None:
    """status and explain answer (exit 0, no traceback); the daemon sends the file at
    once (the moment is unknown), is done with it and stops cleanly."""
    shown = site.command("status", "--json")
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr
    [entry] = [f for f in json.loads(shown.stdout)["files"] if f["path"] == str(held)]
    assert entry["state"] == "waiting"
    assert "next_try" not in entry
    explained = site.command("explain", str(held))
    assert "Traceback" not in explained.stderr, explained.stderr
    assert "  ledger: error" in explained.stdout
    proc = DaemonProcess(site)
    try:
        wait_for(lambda: proc.named("file.done"), timeout=30, what="the file sent")
        assert not proc.named("file.deferred")
        assert len(site.api.uploads) == 2
    finally:
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert "Traceback" not in "".join(proc.raw)


@pytest.mark.parametrize("value", BAD)
def test_a_next_try_no_dropscribe_writes_is_an_unknown_moment(site, value):
    """A waiting file's next_try overwritten with NaN, an infinity or a moment no calendar
    has: status and explain give no moment, and a restarted daemon sends the file."""
    asks_for_a_pause(site, LONG)
    held = make_wav(site.inbox / "held.wav", seconds=0.5)
    waited(site, held)
    overwrite(site, value)
    check(site, held)


def test_words_in_a_sqlite_next_try_are_an_unknown_moment(setup):
    """SQLite keeps words in a real column: a next_try of text is no moment either."""
    setup.data["rescan_seconds"] = 3600
    setup.data["workers"] = 1
    setup.backend = "sqlite"
    asks_for_a_pause(setup, LONG)
    held = make_wav(setup.inbox / "held.wav", seconds=0.5)
    waited(setup, held)
    overwrite(setup, "tomorrow")
    check(setup, held)

"""attack21: the hooks owed, looked at a hundred rows at a time (``ledger/owed.py``). The
hundred were the oldest of every inbox and every run, and only then narrowed to this
host's inboxes and to dead runs: a hundred rows older than this host's (of an inbox
another host has, or one taken out of the config, left by a daemon killed in a burst)
kept every later row from ever running late. Through the real daemon, on its SQLite
ledger and on a PostgreSQL ledger two hosts share."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

import pg
from conftest import DaemonProcess, wait_for
from test_hooks20_owed import RECORD, calls, owed_rows, shared_owed
from test_hosts import Host, running

if TYPE_CHECKING:
    from pathlib import Path

    from fakeapi import FakeAPI

pytestmark = pytest.mark.slow
DEAD = "1:?"  # pid 1 started at no time: a run no longer alive


def owe(state: Path, rows: list[tuple[str, str, dict[str, Any], float]]) -> None:
    """(path, inbox, body, owed) owed for done files by a dead run, in the ledger itself."""
    with contextlib.closing(sqlite3.connect(state / "ledger.sqlite3")) as db, db:
        db.executemany(
            "INSERT INTO hooks (path, outcome, inbox, body, held, run, owed)"
            " VALUES (?, 'done', ?, ?, 0, ?, ?)",
            [(path, inbox, json.dumps(body), DEAD, owed) for path, inbox, body, owed in rows],
        )


@pytest.mark.parametrize("older", [100, 250])
def test_a_hook_owed_behind_rows_of_other_inboxes_runs_late(setup: Any, older: int) -> None:
    """``older`` rows owed for an inbox this config does not have, all older than a's:
    the next start runs a's hook late all the same (it never ran), and leaves theirs."""
    log = setup.root / "hook.jsonl"
    setup.data["defaults"]["hook"] = {"command": [sys.executable, "-c", RECORD, str(log)]}
    first = DaemonProcess(setup)
    try:
        first.wait_event("daemon.started")
    finally:
        first.kill()
    [inbox] = setup.load().inboxes
    mine = str(setup.inbox / "a.wav")
    body = {"file": mine, "outcome": "done", "sidecars": []}
    elsewhere = [
        (f"/srv/other/{n}.wav", "other", {**body, "file": f"/srv/other/{n}.wav"}, float(n))
        for n in range(older)
    ]
    owe(setup.state, [*elsewhere, (mine, inbox.name, body, 1e6)])
    second = DaemonProcess(setup)
    try:
        second.wait_event("hook.late", timeout=30)
        wait_for(lambda: calls(log), timeout=30, what="a's hook called")
        wait_for(lambda: len(owed_rows(setup.state)) == older, timeout=30, what="a's row gone")
    finally:
        second.kill()
    [call] = calls(log)
    assert (call["stdin"]["file"], call["stdin"]["late"], call["env_late"]) == (mine, True, "1")
    assert [e["path"] for e in second.named("hook.late")] == [mine]


@pytest.mark.timeout(300)
def test_a_host_runs_its_own_late_hook_behind_another_hosts_rows(
    tmp_path: Path, api: FakeAPI, pg_url: str
) -> None:
    """Two hosts on one PostgreSQL ledger: 150 rows owed, all older, by a host no longer
    alive for an inbox only it has; host b, whose run owed a row of its own inbox and
    died, runs that one late at its next start, and leaves the others' rows."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    log = tmp_path / "hook.jsonl"
    host = Host(tmp_path, "b", inbox, api, pg_url)
    host.data["defaults"]["hook"] = {"command": [sys.executable, "-c", RECORD, str(log)]}
    with running([host]):
        pass  # the ledger's tables made
    mine = str(inbox / "a.wav")
    body = {"file": mine, "outcome": "done", "sidecars": []}
    rows = [
        (f"/srv/a/{n}.wav", "theirs", {**body, "file": f"/srv/a/{n}.wav"}, n) for n in range(150)
    ]
    with psycopg.connect(pg_url, password=pg.PASSWORD, autocommit=True) as db:
        db.cursor().executemany(
            "INSERT INTO hooks (path, outcome, inbox, body, held, run, owed)"
            " VALUES (%s, 'done', %s, %s, false, 'gone-run', %s)",
            [(path, where, json.dumps(said), float(n)) for path, where, said, n in rows]
            + [("@calls/a.wav", "calls", json.dumps(body), 1e6)],  # as the ledger keeps it
        )
    with running([host]) as [proc]:
        proc.wait_event("hook.late", timeout=30)
        wait_for(lambda: shared_owed(pg_url) == 150, timeout=30, what="its row gone")
    [call] = calls(log)
    assert (call["stdin"]["file"], call["stdin"]["late"]) == (mine, True)
    assert [e["path"] for e in proc.named("hook.late")] == [mine]

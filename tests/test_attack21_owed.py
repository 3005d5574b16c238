"""attack21: the hooks owed, looked at a hundred rows at a time (``ledger/owed.py``). The
hundred were the oldest of every inbox and every run, and only then narrowed to this
host's inboxes and to dead runs: a hundred rows older than this host's (of an inbox
another host has, or one taken out of the config, left by a daemon killed in a burst)
kept every later row from ever running late. Through the real daemon, on its SQLite
ledger."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, wait_for
from test_hooks20_owed import RECORD, calls, owed_rows

if TYPE_CHECKING:
    from pathlib import Path

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

"""leftovers21: ``dropscribe ledger migrate`` copied files, jobs and the steps' rows but
not the hooks owed (hooks20's ``hooks`` table) nor the pending ``after:`` actions that a
held hook waits for (``afters``): a hook owed in the SQLite ledger never ran once the
host moved to PostgreSQL, and a done file's move that had failed was never tried again.
Both are copied now. Real daemons (SQLite, then PostgreSQL), the real command."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

import pg
from conftest import DaemonProcess, make_wav, tmpfs, wait_for
from test_attacks_ledgerfix import fill
from test_hooks20_owed import RECORD, blocking_hook, calls, killed_in_hook, owed_rows

if TYPE_CHECKING:
    from conftest import Setup

pytestmark = pytest.mark.slow


def shared(url: str, sql: str) -> list[tuple[Any, ...]]:
    """``sql``'s rows in the PostgreSQL ledger."""
    with psycopg.connect(url, password=pg.PASSWORD, autocommit=True) as db:
        return db.execute(sql).fetchall()  # type: ignore[arg-type]


def moved_to_postgres(setup: Setup, url: str) -> str:
    """The config given the shared ledger at ``url``, and ``ledger migrate`` run on it:
    its output."""
    (setup.root / "ledger.password").write_text(pg.PASSWORD + "\n")
    setup.data["ledger"] = {
        "url": url,
        "password_file": "ledger.password",
        "host": "a",
        "lease_seconds": 3,
    }
    done = setup.command("ledger", "migrate")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_hook_owed_in_sqlite_runs_late_after_ledger_migrate(setup: Setup, pg_url: str) -> None:
    """kill -9 while a's hook runs on a SQLite ledger; ledger migrate to PostgreSQL says
    "hooks: 1 copied"; the daemon on the shared ledger runs that hook once more, late,
    with the JSON it was owed with; its row is gone; a second migrate copies none."""
    with blocking_hook(setup.root) as (command, log):
        setup.data["defaults"]["hook"] = {"command": command}
        killed_in_hook(setup, log)
        assert owed_rows(setup.state) == [(str(setup.inbox / "a.wav"), "done")]
        shown = moved_to_postgres(setup, pg_url)
        assert "hooks: 1 copied\n" in shown, shown
        assert shared(pg_url, "SELECT path, outcome FROM hooks") == [("@inbox/a.wav", "done")]
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("hook.late", timeout=30)
            daemon.wait_event("hook.ran", timeout=30)
            wait_for(lambda: not shared(pg_url, "SELECT 1 FROM hooks"), 30, "the row gone")
        finally:
            daemon.kill()
        assert "hooks: 0 copied\n" in moved_to_postgres(setup, pg_url)
    before, late = calls(log)
    assert late["stdin"] == {**before["stdin"], "late": True}
    assert late["env_late"] == "1"
    assert daemon.named("file.done") == []  # done stays done: no new upload
    assert len(setup.api.uploads) == 1


def test_a_held_hook_and_its_pending_move_survive_ledger_migrate(setup: Setup, pg_url: str) -> None:
    """a done, its move to a full done_dir pending and its hook held for it (SQLite);
    ledger migrate copies both rows; with room made, the daemon on PostgreSQL moves a and
    then runs the hook once, moved_to naming where a went."""
    log = setup.root / "hook.jsonl"
    with tmpfs(setup.root / "done", "size=3m") as done:
        setup.data["inboxes"][0].update(done_dir=str(done))
        setup.data["defaults"].update(
            after="move", hook={"command": [sys.executable, "-c", RECORD, str(log)]}
        )
        filler = fill(done)
        first = DaemonProcess(setup)
        try:
            first.wait_event("daemon.started")
            make_wav(setup.inbox / "a.wav")
            first.wait_event("hook.deferred", timeout=30)
            # the done write (its held hook in it) rides a group commit, not waited for
            wait_for(lambda: owed_rows(setup.state), timeout=30, what="its row committed")
        finally:
            first.kill()
        shown = moved_to_postgres(setup, pg_url)
        assert "afters: 1 copied\n" in shown, shown
        assert "hooks: 1 copied\n" in shown, shown
        filler.unlink()
        second = DaemonProcess(setup)
        try:
            second.wait_event("file.after_done", timeout=30)
            second.wait_event("hook.ran", timeout=30)
            wait_for(lambda: not shared(pg_url, "SELECT 1 FROM hooks"), 30, "the row gone")
        finally:
            second.kill()
        assert (done / "a.wav").exists()
        assert not (setup.inbox / "a.wav").exists()
    (call,) = calls(log)
    assert call["stdin"]["moved_to"] == str(done / "a.wav")
    assert call["stdin"]["late"] is False
    assert shared(pg_url, "SELECT 1 FROM afters") == []
    assert len(setup.api.uploads) == 1

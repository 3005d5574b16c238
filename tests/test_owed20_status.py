"""owed20: ``status`` (and ``--json``) counts each inbox's hooks owed, left by a daemon
that ended, and held behind a pending ``after:``; ``explain PATH`` says where the file's
hook stands. Through the real commands, on a ledger the real daemon wrote."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

import pg
from conftest import DaemonProcess, make_wav, tmpfs, wait_for
from dropscribe.ledger.owed import HookCounts, OwedHook
from dropscribe.ledger.places import Places
from dropscribe.ledger.postgres import PostgresLedger
from dropscribe.vocab.config import SharedLedger
from test_attacks_ledgerfix import fill
from test_hooks20_owed import RECORD, blocking_hook, calls, killed_in_hook, owed_rows

pytestmark = pytest.mark.slow
PATH, MOVED = Path("/srv/in/a.wav"), Path("/srv/in/b.wav")
BODY: dict[str, Any] = {"file": str(PATH), "outcome": "done", "late": False}


def _counts(setup: Any) -> dict[str, int]:
    """``status --json``'s hook counts of the one inbox."""
    shown = setup.command("status", "--json", write=False)
    assert shown.returncode == 0, shown.stderr
    [inbox] = json.loads(shown.stdout)["inboxes"]
    return dict(inbox["hooks"])


def test_status_and_explain_tell_a_hook_a_killed_daemon_owes(setup: Any) -> None:
    """kill -9 while a's hook runs: status counts it owed and late, explain says it runs
    late at the next start; once it ran, status counts none and says nothing of hooks."""
    with blocking_hook(setup.root) as (command, log):
        setup.data["defaults"]["hook"] = {"command": command}
        setup.data["rescan_seconds"] = 1
        killed_in_hook(setup, log)
        assert _counts(setup) == {"owed": 1, "late": 1, "held": 0}
        text = setup.command("status", write=False).stdout
        assert "hooks owed (each runs at least once):" in text
        assert "1 owed; 1 of them left by a daemon that ended" in text
        told = setup.command("explain", str(setup.inbox / "a.wav"), write=False).stdout
        assert "hook (done): owed since" in told
        assert "runs late at the next start or rescan" in told
        second = DaemonProcess(setup)
        try:
            second.wait_event("hook.ran", timeout=30)
            wait_for(lambda: not owed_rows(setup.state), timeout=30, what="the row gone")
        finally:
            second.kill()
    assert _counts(setup) == {"owed": 0, "late": 0, "held": 0}
    assert "hooks owed" not in setup.command("status", write=False).stdout
    assert "hook (" not in setup.command("explain", str(setup.inbox / "a.wav"), write=False).stdout


def test_status_and_explain_tell_a_hook_held_behind_a_pending_after(setup: Any) -> None:
    """A done file whose move fails (done_dir full): its hook is counted held, not owed,
    and explain says it runs once the after: is done."""
    log = setup.root / "hook.jsonl"
    with tmpfs(setup.root / "done", "size=3m") as done:
        setup.data["inboxes"][0].update(done_dir=str(done))
        hook = {"command": [sys.executable, "-c", RECORD, str(log)]}
        setup.data["defaults"].update(after="move", hook=hook)
        fill(done)
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("daemon.started")
            make_wav(setup.inbox / "a.wav")
            daemon.wait_event("hook.deferred", timeout=30)
            assert _counts(setup) == {"owed": 0, "late": 0, "held": 1}
            text = setup.command("status", write=False).stdout
            assert "1 held until the file's after: is done" in text
            told = setup.command("explain", str(setup.inbox / "a.wav"), write=False).stdout
            assert "hook (done): held since" in told
        finally:
            daemon.kill()
    assert calls(log) == []


def test_postgres_counts_hooks_owed_by_a_live_host_a_gone_one_and_held(pg_url: str) -> None:
    """PostgreSQL: a's hook counts owed (not late) while a beats, late once it is gone;
    a hook behind a pending after: counts held; hooks_of tells each file's."""
    places = Places([("calls", Path("/srv/in"))])
    a, b = (PostgresLedger(SharedLedger(pg_url, pg.PASSWORD, n, 30.0), places) for n in "ab")
    try:
        a.hook_owed(OwedHook(PATH, "done", "calls", BODY))
        b.after_failed(MOVED, "calls", "move", "No space left on device")
        b.hook_owed(OwedHook(MOVED, "done", "calls", BODY, held=True))
        assert b.hook_counts() == {"calls": HookCounts(owed=1, late=0, held=1)}
        a.close()  # its heartbeat row goes with it
        assert b.hook_counts() == {"calls": HookCounts(owed=1, late=1, held=1)}
        [late] = b.hooks_of(PATH)
        assert (late.outcome, late.late, late.held) == ("done", True, False)
        [held] = b.hooks_of(MOVED)
        assert (held.late, held.held) == (False, True)
    finally:
        b.close()

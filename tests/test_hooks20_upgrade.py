"""hooks20: a pending ``after:`` written before paras19 held no hook: its hook ran at
done, the recording still in its inbox. Opened by this dropscribe (the ledger's layout
2 -> 3), such a row gets no hook when its move finally works: paras19 ran the hook a
second time there. The old dropscribe runs for real (``old_package``) on a 3 MiB tmpfs
done_dir it finds full; then this one, with room again."""

from __future__ import annotations

import json
import sqlite3
import sys
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, make_wav, old_package, tmpfs
from test_attacks_ledgerfix import fill

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

BEFORE = "ac06767507a6547c4b213793e5c9d91a60160926"  # paras19's commit before the held hook
RECORD = "import sys; open(sys.argv[1], 'a').write(sys.stdin.read().strip() + '\\n')"


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_a_pending_move_from_before_paras19_runs_no_second_hook(setup: Any) -> None:
    """The old daemon runs the hook at done and keeps the move pending (done_dir full);
    this one, with room, moves the recording at start and runs no hook: one call in
    all, the old one, with moved_to null."""
    log = setup.root / "hook.jsonl"
    old = old_package(BEFORE, setup.root / "old")
    with tmpfs(setup.root / "done", "size=3m") as done:
        setup.data["inboxes"][0].update(done_dir=str(done))
        setup.data["defaults"]["after"] = "move"
        setup.data["defaults"]["hook"] = {"command": [sys.executable, "-c", RECORD, str(log)]}
        filler = fill(done)
        before = DaemonProcess(setup, env={"PYTHONPATH": str(old)})
        try:
            before.wait_event("daemon.started")
            make_wav(setup.inbox / "a.wav")
            before.wait_event("file.after_failed", timeout=30)
            before.wait_event("hook.ran", timeout=30)  # at done, before paras19
        finally:
            before.kill()
        with sqlite3.connect(setup.state / "ledger.sqlite3") as db:
            assert db.execute("PRAGMA user_version").fetchone() == (2,)
        filler.unlink()
        now = DaemonProcess(setup)
        try:
            now.wait_event("file.after_done", timeout=30)
            now.wait_event("daemon.started", timeout=30)
            make_wav(setup.inbox / "b.wav", freq=600)  # its hook: a's would have come first
            now.wait_event("hook.ran", timeout=30)
        finally:
            now.kill()
    first, other = calls(log)
    assert first["file"] == str(setup.inbox / "a.wav")
    assert first["moved_to"] is None
    assert other["file"] == str(setup.inbox / "b.wav")
    assert now.named("file.after_done")[0]["moved_to"] == str(done / "a.wav")

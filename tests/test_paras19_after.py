"""paras19: a folder's hook sees a done file at its final place. Where ``after: move``
fails at first (a full ``done_dir``) and works at a later rescan, the hook runs once,
after the move, with where the recording went; not at ``done`` with it still in its
inbox. Through the real ``dropscribe`` process, a 3 MiB tmpfs and the fake API."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, make_wav, tmpfs
from test_attacks_ledgerfix import fill

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

RECORD = "import sys; open(sys.argv[1], 'a').write(sys.stdin.read().strip() + '\\n')"


def _calls(log: Path) -> list[dict[str, Any]]:
    """Each hook call's JSON, in order."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_the_hook_runs_once_after_a_pending_move_works(setup: Any) -> None:
    """The move fails (done_dir full): no hook at done; with room again, the rescan moves
    the recording and the hook runs once, with moved_to its place in done_dir."""
    log = setup.root / "hook.jsonl"
    with tmpfs(setup.root / "done", "size=3m") as done:
        setup.data["inboxes"][0].update(done_dir=str(done))
        setup.data["defaults"]["after"] = "move"
        setup.data["defaults"]["hook"] = {"command": [sys.executable, "-c", RECORD, str(log)]}
        setup.data["rescan_seconds"] = 1
        setup.data["log"] = {"level": "debug"}  # a failure said again is at debug
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("daemon.started")
            filler = fill(done)
            make_wav(setup.inbox / "a.wav")
            daemon.wait_event("file.done")
            daemon.wait_event("file.after_failed", count=2, timeout=30)  # a rescan tried again
            assert _calls(log) == []
            assert not daemon.named("hook.ran")
            filler.unlink()
            daemon.wait_event("file.after_done", timeout=30)
            daemon.wait_event("hook.ran", timeout=30)
            make_wav(setup.inbox / "b.wav", freq=600)  # rescans pass meanwhile: a's hook once
            daemon.wait_event("hook.ran", count=2, timeout=30)
        finally:
            daemon.kill()
    call, other = _calls(log)
    assert other["file"] == str(setup.inbox / "b.wav")
    assert call["outcome"] == "done"
    assert call["file"] == str(setup.inbox / "a.wav")
    assert call["moved_to"] == str(done / "a.wav")
    assert call["sidecars"] == [str(setup.inbox / "a.txt")]
    assert len(daemon.named("hook.ran")) == 2

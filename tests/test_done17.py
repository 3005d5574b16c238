"""done17: a done file whose ``after: move`` failed (a full ``done_dir``) is kept pending
in the ledger and moved later: at start after a restart, at a rescan; ``status --json``
says it is pending and why; a done_dir that stays unusable is said once per error.
Through the real ``dropscribe`` process, a 3 MiB tmpfs and the fake API."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from conftest import DaemonProcess, make_wav, tmpfs, wait_for
from test_attacks_ledgerfix import fill

pytestmark = pytest.mark.slow

NO_SPACE = "No space left on device"


def _failed_once(setup: Any, done: Any) -> Any:
    """A daemon that transcribed ``a.wav`` and could not move it into the full ``done``;
    the filler is returned, the daemon stopped (SIGTERM: its last ledger writes land, as
    ``file.done`` is said before its group commit does)."""
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        filler = fill(done)
        make_wav(setup.inbox / "a.wav")
        daemon.wait_event("file.after_failed")
        daemon.wait_event("file.done")
        daemon.signal(15)
        assert daemon.wait(60) == 0
    finally:
        daemon.kill()
    assert (setup.inbox / "a.wav").is_file()
    assert (setup.inbox / "a.txt").read_text() == "transcript of a.wav\n"
    return filler


def test_a_pending_move_is_done_at_start_after_a_restart(setup: Any) -> None:
    """The move failed before a restart; with room again, the restarted daemon moves the
    recording at its start scan (no rescan comes meanwhile), without a second upload."""
    with tmpfs(setup.root / "done", "size=3m") as done:
        setup.data["inboxes"][0].update(done_dir=str(done))
        setup.data["defaults"]["after"] = "move"
        filler = _failed_once(setup, done)
        filler.unlink()
        daemon = DaemonProcess(setup)  # rescan_seconds: 60, so only the start scan
        try:
            daemon.wait_event("file.after_done")
            assert (done / "a.wav").is_file()
        finally:
            daemon.kill()
        assert not (setup.inbox / "a.wav").exists()
        assert (setup.inbox / "a.txt").read_text() == "transcript of a.wav\n"
        moved = daemon.named("file.after_done")
        assert moved[0]["after"] == "move"
        assert moved[0]["moved_to"] == str(done / "a.wav")
        assert not daemon.named("file.done")  # not done again: no new sidecars
    assert len(setup.api.uploads) == 1


def test_status_json_says_the_after_is_pending_and_why(setup: Any) -> None:
    """``status --json`` lists the done file under ``after_pending`` with its action and
    error, and counts it done; once moved, nothing is pending."""
    with tmpfs(setup.root / "done", "size=3m") as done:
        setup.data["inboxes"][0].update(done_dir=str(done))
        setup.data["defaults"]["after"] = "move"
        filler = _failed_once(setup, done)
        shown = setup.command("status", "--json")
        assert shown.returncode == 0, shown.stderr
        found = json.loads(shown.stdout)
        [pending] = found["after_pending"]
        assert pending["path"] == str(setup.inbox / "a.wav")
        assert pending["state"] == "done"
        assert pending["after"] == "move"
        assert pending["reason"] == NO_SPACE
        assert pending["tries"] == 1
        assert found["inboxes"][0]["counts"]["done"] == 1
        assert not found["files"]  # nothing about it is unfinished but the move
        told = setup.command("explain", str(setup.inbox / "a.wav"))
        assert f"after: move pending: {NO_SPACE}" in told.stdout
        filler.unlink()
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("file.after_done")
        finally:
            daemon.kill()
        after = json.loads(setup.command("status", "--json").stdout)
        assert after["after_pending"] == []


def test_a_done_dir_that_stays_unusable_is_said_once_per_error(setup: Any) -> None:
    """At every rescan the move is tried again: the same error is a warning once, then
    debug; a new error (the done_dir read-only now) is a warning again; the file is not
    announced as new at each rescan."""
    with tmpfs(setup.root / "done", "size=3m") as done:
        setup.data["inboxes"][0].update(done_dir=str(done))
        setup.data["defaults"]["after"] = "move"
        setup.data["rescan_seconds"] = 1
        setup.data["log"] = {"level": "debug"}
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("daemon.started")
            filler = fill(done)
            make_wav(setup.inbox / "a.wav")
            daemon.wait_event("file.after_failed", count=3, timeout=30)
            subprocess.run(["mount", "-o", "remount,ro", str(done)], check=True)
            wait_for(
                lambda: any("Read-only" in str(e.get("error")) for e in warned(daemon)),
                20,
                "the read-only done_dir said",
            )
            daemon.wait_event("file.after_failed", count=len(failed(daemon)) + 2, timeout=30)
            subprocess.run(["mount", "-o", "remount,rw", str(done)], check=True)
            filler.unlink()
            daemon.wait_event("file.after_done", timeout=30)
        finally:
            daemon.kill()
        assert [e["error"] for e in warned(daemon)] == [NO_SPACE, "Read-only file system"]
        assert all(e["level"] == "debug" for e in failed(daemon) if e not in warned(daemon))
        detected = [e for e in daemon.named("file.detected") if e["level"] != "debug"]
        assert len(detected) == 1
        assert (done / "a.wav").is_file()
    assert len(setup.api.uploads) == 1


def failed(daemon: DaemonProcess) -> list[dict[str, Any]]:
    return daemon.named("file.after_failed")


def warned(daemon: DaemonProcess) -> list[dict[str, Any]]:
    return [e for e in failed(daemon) if e["level"] == "warning"]

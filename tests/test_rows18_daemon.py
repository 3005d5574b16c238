"""rows18, through the real ``dropscribe`` process (SQLite and the real PostgreSQL): a
pending ``after:`` whose inbox was taken out of the config is not said to be tried again:
``status``, ``explain`` and the daemon (``file.after_unreached``, once) say why not and
what to do, and once the recording is deleted by hand a rescan forgets it; a waiting
file deleted while the daemon was stopped loses its ``waits`` row at the next start."""

from __future__ import annotations

import json
import signal
from typing import TYPE_CHECKING, Any

import pytest

import pg
from conftest import DaemonProcess, make_wav
from dropscribe.ledger.places import Places
from dropscribe.ledger.postgres import PostgresLedger
from dropscribe.ledger.store import SqliteLedger
from dropscribe.vocab.config import SharedLedger
from test_attack16_next_try import site
from test_until16 import LONG, asks_for_a_pause, waited

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["site"]  # the fixture, used by name

pytestmark = pytest.mark.slow


def opened(site: Any, inboxes: list[tuple[str, Path]]) -> Any:
    """The site's ledger as a daemon whose config has ``inboxes`` opens it."""
    if site.backend == "sqlite":
        return SqliteLedger(site.state / "ledger.sqlite3")
    return PostgresLedger(SharedLedger(site.url, pg.PASSWORD, "a", 30.0), Places(inboxes))


def stopped(proc: DaemonProcess) -> None:
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_a_pending_after_whose_inbox_left_the_config_is_said_never_tried(site: Any) -> None:
    """Status, explain and the daemon say why the move is not tried and what to do; deleted by hand, it is forgotten."""
    old = site.root / "old"
    recording = make_wav(old / "a.wav", seconds=0.1)
    ledger = opened(site, [("old", old)])  # the daemon of the config before the edit
    try:
        ledger.after_failed(recording, "old", "move", "Permission denied")
    finally:
        ledger.close()
    sqlite = site.backend == "sqlite"
    shown = str(recording) if sqlite else "@old/a.wav"  # a shared ledger: not mapped here
    why = "inbox old is no longer in the config" if sqlite else "inbox old is not in this config"

    found = site.command("status", "--json")
    assert found.returncode == 0, found.stderr
    [pending] = json.loads(found.stdout)["after_pending"]
    assert (pending["path"], pending["unreached"]) == (shown, why)
    assert pending["action"].startswith("not tried again: put inbox old back in the config")
    lines = site.command("status").stdout
    assert f"    not tried again: {why}" in lines
    assert "tried again at each rescan" not in lines
    if sqlite:
        told = site.command("explain", str(recording)).stdout
        assert f"    not tried again: {why}" in told
        assert "tried again at each rescan" not in told

    site.data["rescan_seconds"] = 1
    proc = DaemonProcess(site)
    try:
        proc.wait_event("file.after_unreached", timeout=30)
        if sqlite:
            recording.unlink()
            proc.wait_event("file.after_dropped", timeout=30)
    finally:
        stopped(proc)
    [said] = proc.named("file.after_unreached")
    assert (said["path"], said["reason"], said["level"]) == (shown, why, "warning")
    assert said["action"].startswith("put inbox old back in the config")
    left = json.loads(site.command("status", "--json").stdout)["after_pending"]
    assert [entry["path"] for entry in left] == ([] if sqlite else [shown])


def test_a_waiting_file_deleted_while_stopped_loses_its_wait_at_start(site: Any) -> None:
    """A file waits an hour, is deleted while the daemon is stopped: the next start drops its waits row."""
    asks_for_a_pause(site, LONG)
    held = make_wav(site.inbox / "held.wav", seconds=0.5)
    waited(site, held)
    held.unlink()
    proc = DaemonProcess(site)
    try:
        proc.wait_event("daemon.started", timeout=30)
    finally:
        stopped(proc)
    [swept] = proc.named("ledger.swept")
    assert (swept["table"], swept["rows"]) == ("waits", 1)
    ledger = opened(site, [("inbox", site.inbox)])
    try:
        assert ledger.waited_for(held) is None
    finally:
        ledger.close()

"""ready22: a recursive inbox of many folders holds neither the start nor a stop.

watchdog adds a recursive inbox's watches as its observer starts, walking every folder, and
the daemon started it on the main loop's thread: a SIGTERM, a reload and the first files
waited for every watch (100,000 folders: 17 s here), and READY=1 came only after the first
full scan (a huge share passed systemd's TimeoutStartSec, and the unit was killed at every
start). Through the real ``dropscribe`` process, on an inbox whose watches are slow to add
for a reason of our own: folders at the bottom of a deep folder chain (watchdog looks each
one up from the inbox down, and the kernel walks its whole path).
"""

from __future__ import annotations

import collections
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import DaemonProcess, make_wav, patience, wait_for
from folders import deep_tree
from test_grace18_stop import terminated
from test_scan21_stop import arrived, event, uploaded
from test_systemd import NotifySocket
from test_watchstop20_poll import GRACE, stopped_in_time

pytestmark = pytest.mark.slow

DEPTH = 800  # nested folders (os.walk recurses: Python 3.11's limit is near 1,000)
WIDE = 12_000  # folders at the bottom: their watches take 10 to 25 s here, loaded
SOME = 500  # watches held when the daemon is told something: the adding under way


def many_folders(setup: Any) -> Path:
    """``setup``'s inbox, recursive, with ``WIDE`` folders at the bottom of ``DEPTH`` nested
    folders ``d/`` (made relative to each folder's descriptor: no path walked); the folder
    whose watch is added last (the last its listing gives: watchdog's walk goes in that
    order)."""
    setup.data["inboxes"][0]["recursive"] = True
    setup.data["shutdown_grace"] = GRACE
    setup.data["rescan_seconds"] = 3600
    started = time.monotonic()
    deep_tree(setup.inbox, DEPTH, folders=(f"w{n}" for n in range(WIDE)))
    bottom = setup.inbox.joinpath(*["d"] * DEPTH)
    last = [entry.name for entry in os.scandir(bottom)][-1]
    print(f"made the tree in {time.monotonic() - started:.2f} s")
    return bottom / last


def watches(daemon: DaemonProcess) -> int:
    """The inotify watches the daemon holds (its inotify instances' fdinfo)."""
    held = 0
    folder = Path(f"/proc/{daemon.proc.pid}")
    try:
        for fd in (folder / "fd").iterdir():
            if os.readlink(fd) == "anon_inode:inotify":
                text = (folder / "fdinfo" / fd.name).read_text()
                held += text.count("inotify wd:")
    except OSError:  # it ended, or the descriptor closed meanwhile
        return held
    return held


def test_a_sigterm_while_the_watches_are_added_ends_the_daemon_in_time(setup: Any) -> None:
    """A SIGTERM while the watches of a recursive inbox of many folders are being added ends
    the daemon within the grace and its margin, the adding given up (it waited for every
    watch, and for the start's first scan slice)."""
    many_folders(setup)
    daemon = DaemonProcess(setup)
    try:
        wait_for(lambda: watches(daemon) >= SOME, 60, "the watches being added")
        code, took = terminated(daemon)
    finally:
        daemon.kill()
    stopped_in_time(daemon, code, took)
    assert not daemon.named("inbox.watching"), "every watch was added first"


def test_a_sighup_while_the_watches_are_added_is_acted_on_at_once(setup: Any) -> None:
    """A SIGHUP while the watches of a recursive inbox of many folders are being added
    reloads the config within seconds (it waited for every watch), the adding begun again
    with it, then the first scan."""
    many_folders(setup)
    daemon = DaemonProcess(setup)
    try:
        wait_for(lambda: watches(daemon) >= SOME, 60, "the watches being added")
        asked = time.monotonic()
        daemon.signal(signal.SIGHUP)
        arrived(daemon, event("config.reloaded"))
        took = time.monotonic() - asked
        assert not daemon.named("inbox.watching"), "reloaded once every watch was added"
        arrived(daemon, event("inbox.watching"))
        arrived(daemon, event("scan.finished"))
        code, stop = terminated(daemon)
    finally:
        daemon.kill()
    stopped_in_time(daemon, code, stop)
    print(f"the reload took {took:.2f} s")
    assert took <= patience(2.0), took
    assert len(daemon.named("inbox.watching")) == 1, "the first adding was given up"


def test_ready_comes_while_the_watches_are_added_and_status_tells_the_first_scan_through(
    setup: Any, tmp_path: Path
) -> None:
    """READY=1 (and daemon.started) come while the watches are being added, before the first
    scan; STATUS= says the watches are being added, then the files the scan found so far,
    then the inboxes watched once it is through (READY=1 waited for the first scan)."""
    many_folders(setup)
    notify = NotifySocket(tmp_path / "notify.sock")
    env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "200000"}
    daemon = DaemonProcess(setup, env=env)
    try:
        wait_for(lambda: notify.seen("READY"), 60, "READY=1")
        assert not daemon.named("inbox.watching"), "READY=1 once every watch was added"
        assert not daemon.named("scan.finished"), "READY=1 once the first scan was through"
        arrived(daemon, event("daemon.started"))
        wait_for(lambda: notify.poll() and daemon.named("scan.finished"), 120, "the scan")
        wait_for(lambda: "watching 1 inbox;" in notify.seen("STATUS")[-1]["STATUS"], 10, "STATUS")
        code, took = terminated(daemon)
    finally:
        daemon.kill()
        notify.sock.close()
    stopped_in_time(daemon, code, took)
    said = [message["STATUS"].split(";")[0] for message in notify.messages if "STATUS" in message]
    leads = [lead.split(":")[0] for lead in said]
    order = [leads.index(lead) for lead in ("adding the watches", "scanning", "watching 1 inbox")]
    assert order == sorted(order), said
    assert len([message for message in notify.messages if "READY" in message]) == 1


def test_a_recording_dropped_while_the_watches_are_added_is_done_once(setup: Any) -> None:
    """Recordings dropped while the daemon serves and its watches are still being added, one
    in the folder whose watch comes last and one in the inbox itself, are each done once:
    the scan begun once every watch is added finds what no watch heard."""
    last = many_folders(setup)
    daemon = DaemonProcess(setup)
    try:
        arrived(daemon, event("daemon.started"))
        assert not daemon.named("inbox.watching"), "started once every watch was added"
        make_wav(last / "late.wav", freq=900.0)
        make_wav(setup.inbox / "top.wav", freq=500.0)
        arrived(daemon, event("inbox.watching"))
        arrived(daemon, event("scan.finished"))
        arrived(daemon, event("file.done"), 2)
        code, took = terminated(daemon)
    finally:
        daemon.kill()
    stopped_in_time(daemon, code, took)
    done = collections.Counter(e["path"] for e in daemon.named("file.done"))
    assert done == {str(last / "late.wav"): 1, str(setup.inbox / "top.wav"): 1}
    assert uploaded(setup) == {"late.wav": 1, "top.wav": 1}
    assert (last / "late.txt").read_text() == "transcript of late.wav\n"

"""watchstop20: a polled inbox whose snapshot is slow (review20: 12.4 s for a 100k-file
share under load) neither holds a start nor a stop. watchdog takes the first snapshot in
``start`` on the caller's thread (the main loop: signals unheard, the daemon not started)
and its ``stop`` joins the snapshot under way (a SIGTERM's stop took 20.8 s; the promise
is shutdown_grace plus 1 s). Through the real ``dropscribe`` process, on an inbox whose
snapshot is slow for a reason of our own: files at the bottom of a deep folder chain
(watchdog's recursive walk passes each of them up through a generator per level, and
every look walks the whole path: several seconds, where making them takes one or two),
in a Synology ``@eaDir`` (which the scans skip, and watchdog's snapshot walks)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, make_wav, patience, wait_for
from dropscribe.vocab.config import STOP_MARGIN
from folders import deep_tree
from test_attack20_metrics import healthz
from test_grace18_stop import terminated

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

GRACE = 0.5  # shutdown_grace: the stop's bound is GRACE + STOP_MARGIN (times patience)
DEPTH = 800  # nested folders: "d/" * 800 is a path of 1,600 characters
FILES = 24_000  # at the bottom: a snapshot of about 8 s on this 2-core machine, idle


def deep(inbox: Path) -> Path:
    """``FILES`` empty files at the bottom of ``DEPTH`` folders in the inbox's ``@eaDir``
    (returned), made relative to each folder's descriptor (fast: no path walked)."""
    started = time.monotonic()
    top = deep_tree(inbox / "@eaDir", DEPTH, (f"f{n}" for n in range(FILES)))
    print(f"made the tree in {time.monotonic() - started:.2f} s")
    return top


def polled(setup: Any) -> Path:
    """``setup``'s inbox polled recursively, a stop's grace of ``GRACE``, /healthz served;
    the slow tree's top."""
    setup.data["inboxes"][0].update(watch="poll", poll_seconds=0.2, recursive=True)
    setup.data["shutdown_grace"] = GRACE
    setup.data["metrics"] = {"port": 0}
    return deep(setup.inbox)


def stopped_in_time(daemon: DaemonProcess, code: int, took: float) -> None:
    """The stop ended well (exit 0, daemon.stopped) within the grace and its margin. (A
    snapshot a busy machine has not yet let notice the stop may be left behind with
    watch.stop_late: the promise is the exit's bound, and nothing is lost that way.)"""
    print(f"stop took {took:.2f} s")
    assert code == 0, daemon
    assert took <= patience(GRACE + STOP_MARGIN), took
    assert daemon.named("daemon.stopped")


def test_a_start_on_a_slow_polled_inbox_serves_and_stops_during_its_first_snapshot(
    setup: Any,
) -> None:
    """During the first snapshot /healthz answers 200 and a SIGTERM ends the daemon within
    the grace and its margin, started (daemon.started) and never watching: the snapshot
    was given up (the main loop took the whole snapshot before it heard the signal)."""
    polled(setup)
    daemon = DaemonProcess(setup)
    try:
        assert healthz(daemon.metrics_address()).startswith(b"HTTP/1.1 200"), daemon
        code, took = terminated(daemon)
    finally:
        daemon.kill()
    stopped_in_time(daemon, code, took)
    assert daemon.named("daemon.started")
    assert not daemon.named("inbox.watching")  # given up, not finished


def test_a_stop_while_a_slow_polled_inbox_is_watched_ends_in_time(setup: Any) -> None:
    """A SIGTERM as a later snapshot of the watched inbox begins (it has just listed the
    tree's top: its access time, set to 0, is the listing's) ends the daemon within the
    grace and its margin (the stop joined the snapshot: seconds past the bound)."""
    top = polled(setup)
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("inbox.watching", timeout=60)
        os.utime(top, ns=(0, time.time_ns()))  # relatime: the next listing sets it
        wait_for(lambda: top.stat().st_atime_ns > 0, what="a later snapshot under way")
        code, took = terminated(daemon)
    finally:
        daemon.kill()
    stopped_in_time(daemon, code, took)


def late_folder(inbox: Path) -> Path:
    """A folder of the inbox that its listing gives after ``@eaDir``: a snapshot lists it
    only once the slow tree is walked (the listing's order is the filesystem's)."""
    for n in range(50):
        (inbox / f"talks{n}").mkdir()
    names = [entry.name for entry in os.scandir(inbox)]
    late = next(name for name in names[names.index("@eaDir") + 1 :] if name.startswith("t"))
    return inbox / late


def test_a_file_made_during_the_first_snapshot_before_its_folder_is_listed_is_done(
    setup: Any,
) -> None:
    """A recording made after the start's scan, in a folder the first snapshot has yet to
    list (its access time, set to 0 then, is still 0: the snapshot will hold the file,
    and no later one hears of it), is done: the inbox is rescanned once it is watching (it waited
    for the hourly rescan)."""
    polled(setup)
    setup.data["rescan_seconds"] = 3600
    folder = late_folder(setup.inbox)
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")  # the start's scan is over
        os.utime(folder, ns=(0, time.time_ns()))  # relatime: the next listing sets it
        make_wav(folder / "talk.wav")
        assert folder.stat().st_atime_ns == 0, "listed before the file was made"
        daemon.wait_event("file.done", timeout=60)
        code, took = terminated(daemon)
    finally:
        daemon.kill()
    stopped_in_time(daemon, code, took)
    assert (folder / "talk.txt").read_text() == "transcript of talk.wav\n"

"""review20: a polling watch (``watch: poll``, and every inbox on NFS, SMB or FUSE)
followed symbolic links, as watchdog's snapshot does by default (``os.stat``), and it
keeps no record of the folders it has been in: two links to ``.`` in a recursive inbox
made each snapshot walk 2^40 paths (``a/b/a/a/b/...``, until the kernel's 40 links per
path). The first snapshot is taken in ``Watcher.start``: the daemon never started. Links
made while it ran: the watch stopped seeing files, and a stop waited for the snapshot
for ever (``Watcher.stop`` joins it). The scans follow no link; the watch now neither.
Through the real ``dropscribe`` process."""

from __future__ import annotations

import os
from typing import Any

import pytest

from conftest import DaemonProcess, make_wav, patience
from dropscribe.vocab.config import STOP_MARGIN
from test_grace18_stop import GRACE, terminated

pytestmark = pytest.mark.slow


def polled(setup: Any) -> None:
    """``setup``'s inbox watched by polling, recursively, with a stop's grace of ``GRACE``."""
    setup.data["inboxes"][0].update(watch="poll", poll_seconds=0.2, recursive=True)
    setup.data["shutdown_grace"] = GRACE


def stopped_in_time(daemon: DaemonProcess, code: int, took: float) -> None:
    """The stop ended well (exit 0, daemon.stopped) within the grace and its margin (no
    job was in flight: it may take far less)."""
    assert code == 0, daemon
    assert took <= patience(GRACE + STOP_MARGIN), took
    assert daemon.named("daemon.stopped")


def loop(folder: Any) -> None:
    """Two links to ``folder`` itself in it."""
    for name in ("a", "b"):
        os.symlink(".", folder / name)


def test_a_polled_inbox_with_links_to_itself_starts_hears_files_and_stops(setup: Any) -> None:
    """Two links to the inbox in it before the start: the daemon starts, a recording
    dropped is heard by the watch and done, and a stop ends within the grace (the first
    snapshot never ended: no daemon.started)."""
    polled(setup)
    loop(setup.inbox)
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started", timeout=10)
        make_wav(setup.inbox / "talk.wav")
        daemon.wait_event("file.done")
        code, took = terminated(daemon)
    finally:
        daemon.kill()
    stopped_in_time(daemon, code, took)
    assert (setup.inbox / "talk.txt").read_text() == "transcript of talk.wav\n"


def test_links_made_while_polling_leave_the_watch_hearing_and_the_stop_in_time(
    setup: Any,
) -> None:
    """Two links to a folder of the inbox made while the daemon runs: a recording dropped
    after them is still heard and done, and a stop ends within the grace (the watch's
    snapshot never ended: nothing heard, and the stop waited for it)."""
    polled(setup)
    folder = setup.inbox / "talks"
    folder.mkdir()
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        loop(folder)
        make_wav(folder / "talk.wav")
        daemon.wait_event("file.done")
        code, took = terminated(daemon)
    finally:
        daemon.kill()
    stopped_in_time(daemon, code, took)
    assert (folder / "talk.txt").read_text() == "transcript of talk.wav\n"

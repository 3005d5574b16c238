"""attack17b: what an inbox holds that dropscribe never transcribes (a symbolic link, a
FIFO) is said once, by the intake, and never goes to a worker; before, it settled and
went to one at every rescan, and each time the worker said `file.ignored` again."""

from __future__ import annotations

import os
from typing import Any

from conftest import DaemonProcess, make_wav


def test_a_link_and_a_fifo_in_an_inbox_are_said_once_and_never_sent(setup: Any) -> None:
    """A link to a real recording outside and a FIFO, planted before the start, rescans a
    second apart: two recordings dropped later are done, and the link and the FIFO were
    each said once (with their path and why) and never settled."""
    outside = make_wav(setup.root / "outside" / "private.wav")
    link, fifo = setup.inbox / "link.wav", setup.inbox / "pipe.wav"
    link.symlink_to(outside)
    os.mkfifo(fifo)
    setup.data["rescan_seconds"] = 1
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav")
        daemon.wait_event("file.done")
        make_wav(setup.inbox / "b.wav", freq=550.0)
        daemon.wait_event("file.done", count=2)
    finally:
        daemon.kill()
    settled = {e["path"] for e in daemon.named("file.settled")}
    assert settled == {str(setup.inbox / "a.wav"), str(setup.inbox / "b.wav")}
    ignored = [(e.get("path"), e["reason"]) for e in daemon.named("file.ignored")]
    assert sorted(ignored) == [
        (str(link), "symbolic link"),
        (str(fifo), "not a regular file"),
    ]
    assert len(setup.api.uploads) == 2

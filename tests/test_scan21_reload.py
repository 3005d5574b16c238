"""scan21: a reload waits for the old watches a second at most. It waited for them with
no deadline: a polled inbox whose look hangs (an NFS server that stopped answering) held
the main loop, and so the daemon, for as long as the look did. Through the real
``dropscribe`` process, with the hang put where the test wants it (a polled look of a
folder holding ``.hang`` never returns, as a dead server's does not)."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from conftest import DaemonProcess
from test_attacks import injected
from test_grace18_stop import terminated
from test_watchstop20_poll import GRACE, stopped_in_time

pytestmark = pytest.mark.slow

HANGS = """
import os
import threading

import structlog
from dropscribe.ingest import polling

log = structlog.get_logger("dropscribe")
scandir = polling.PolledObserver._scandir
never = threading.Event()


def hanging(self, path):
    if path is not None and os.path.exists(os.path.join(path, ".hang")):
        log.info("test.hung", path=path)
        never.wait()
    return scandir(self, path)


polling.PolledObserver._scandir = hanging
"""


def test_a_reload_while_a_polled_look_hangs_leaves_the_old_watch_behind(setup: Any) -> None:
    """A SIGHUP while a polled inbox's look hangs reloads the config all the same, the old
    watch left behind with a warning (watch.stop_late, during: reload) that says what to
    do; a SIGTERM then ends the daemon within the grace and its margin."""
    setup.data["inboxes"][0].update(watch="poll", poll_seconds=0.2)
    setup.data["shutdown_grace"] = GRACE
    daemon = DaemonProcess(setup, env=injected(setup, HANGS))
    try:
        daemon.wait_event("inbox.watching")
        (setup.inbox / ".hang").touch()
        daemon.wait_event("test.hung")
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config.reloaded", timeout=5)
        code, took = terminated(daemon)
    finally:
        daemon.kill()
    stopped_in_time(daemon, code, took)
    late = daemon.named("watch.stop_late")
    assert [e["during"] for e in late][:1] == ["reload"], daemon
    assert "the new watches run" in late[0]["action"]

"""uploads19: at a stop, a write keeping what was paid for (a job's fresh transcript, its
file finished) waits ``KEPT`` past the grace for a ledger another process holds briefly,
rather than giving up at the first contention and leaving the request to be paid again at
the next start. Through the real ``dropscribe`` process, at ``shutdown_grace: 0``, with
another process in a write transaction on the SQLite ledger (as test_lock17_held.py)."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from typing import Any

import pytest

from conftest import DaemonProcess, make_wav, patience, wait_for
from dropscribe.vocab.config import STOP_MARGIN
from fakeapi import default_answer
from test_lock17_held import TRANSACTION, holding

pytestmark = pytest.mark.slow


def test_a_paid_transcript_waiting_for_a_briefly_held_ledger_is_kept_at_a_stop(
    setup: Any,
) -> None:
    """At shutdown_grace 0, SIGTERM while a job's answered transcript waits for a write
    transaction of another process, let go just after the stop began: the file is done,
    its transcript in the ledger, the stop within STOP_MARGIN; the next start sends
    nothing."""
    setup.data["shutdown_grace"] = 0
    setup.data["workers"] = 1
    api = setup.api
    answered = threading.Event()

    def answer(upload: Any) -> Any:
        if len(api.uploads) > 1:  # the first file's taught the ledger what the model takes
            answered.wait(30)  # in flight until the ledger is held
        return default_answer(upload)

    api.answer = answer
    first, path = setup.inbox / "a.wav", setup.inbox / "b.wav"
    database = setup.state / "ledger.sqlite3"
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        make_wav(first)
        daemon.wait_event("file.done")
        make_wav(path, freq=300)
        wait_for(lambda: len(api.uploads) == 2, what="the upload in flight")
        with holding(database, TRANSACTION) as holder:
            answered.set()
            daemon.wait_event("upload.finished", 2)  # its transcript waits for the ledger
            started = time.monotonic()
            daemon.signal(signal.SIGTERM)
            # the grace (0) is over: other writes give up (the cost's), or the stop is said
            given_up = ("ledger.write_failed", "daemon.stopping")
            daemon.wait_output(lambda: any(map(daemon.named, given_up)), 20, "the give-up")
            assert holder.stdin is not None
            holder.stdin.close()  # a moment after: it lets go
            code = daemon.wait(timeout=STOP_MARGIN)
            took = time.monotonic() - started
    finally:
        answered.set()
        daemon.kill()
    assert code == 0, daemon
    assert took <= patience(STOP_MARGIN), took
    assert [e["path"] for e in daemon.named("file.done")] == [str(first), str(path)], daemon
    assert not daemon.named("job.abandoned")
    assert path.with_suffix(".txt").exists()
    made = sqlite3.connect(database)
    try:
        states = made.execute("SELECT state FROM jobs").fetchall()
    finally:
        made.close()
    assert states == [("done",), ("done",)]

    again = DaemonProcess(setup, command="once")
    assert again.wait(timeout=60) == 0, again
    assert len(api.uploads) == 2
    assert not again.named("file.done")

"""What ``once`` calls unreachable (once21): an endpoint that drops every connection, or
answers 500/503 to every file, is the endpoint's fault once several files in a row failed
there and none succeeded: the files are left in place and ``once`` exits 3 within a
bounded number of tries. One file whose upload is dropped while the others succeed is
that file's fault alone: it is quarantined, the others done (exit 1)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, Setup, make_wav, patience
from dropscribe.ledger import opening
from dropscribe.vocab.states import FileState
from fakeapi import FakeAPI, Reply, Upload, openai_error

if TYPE_CHECKING:
    from pathlib import Path

FILES = 4
WORKERS = 4
SHIPPED = 5  # max_attempts and pause_after_failures by default; backoff_max 60 s


def _shipped(setup: Setup) -> None:
    """The shipped retry settings (max_attempts 5, pause_after_failures 5, backoff_max 60)."""
    endpoint = setup.data["endpoints"]["local"]
    del endpoint["max_attempts"]
    del endpoint["backoff_max"]
    setup.data["workers"] = WORKERS


def _recordings(setup: Setup) -> list[Path]:
    """Each its own content: copies of one recording would wait for each other's end."""
    return [make_wav(setup.inbox / f"talk{n}.wav", freq=300 + 60 * n) for n in range(FILES)]


def _reasons(setup: Setup, paths: list[Path]) -> dict[str, tuple[FileState, str | None]]:
    """Each file's state and recorded reason in the ledger."""
    store = opening.existing(setup.load())
    assert store is not None
    try:
        rows = {p.name: store.file(p) for p in paths}
    finally:
        store.close()
    return {name: (row.state, row.error) for name, row in rows.items() if row is not None}


FAULTS = {
    "drop": lambda: Reply(status=0, drop=True),
    "500": lambda: openai_error(
        500, "The server had an error processing your request", "server_error"
    ),
    "503": lambda: openai_error(503, "Service Unavailable", "server_error", **{"Retry-After": "2"}),
    "503-long": lambda: openai_error(503, "Down for maintenance", **{"Retry-After": "600"}),
    "stall": lambda: Reply(stall=30.0),  # no answer within the endpoint's timeout (1 s here)
}
WHY = {  # what the ledger's reason says of why the endpoint was called unreachable
    "drop": "none was answered",
    "500": "none was answered",
    "503": "tries in a row found no server",
    "503-long": "it asked for 600 s of quiet (Retry-After)",
    "stall": "none was answered",
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_once_against_an_endpoint_failing_every_file_exits_3_files_in_place(setup, fault):
    """once, 4 files, shipped settings, an endpoint that drops every connection (or answers
    500, or 503 with Retry-After 2 s or 600 s, or stalls past its timeout): exit 3 within
    30 s and a bounded number of tries, every file in the inbox, the ledger saying why."""
    _shipped(setup)
    setup.data["endpoints"]["local"]["timeout"] = 1  # a stall is given up within a second
    setup.api.script.extend(FAULTS[fault]() for _ in range(200))
    recordings = _recordings(setup)
    daemon = DaemonProcess(setup, "once")
    started = time.monotonic()
    try:
        code = daemon.wait(timeout=30)
    finally:
        daemon.kill()  # the old code's once, waiting out the breaker's pause
    took = time.monotonic() - started
    assert code == 3, daemon
    assert sorted(p.name for p in setup.inbox.iterdir()) == sorted(p.name for p in recordings)
    assert not daemon.named("file.failed")
    waiting = daemon.named("file.waiting")
    assert sorted(e["path"] for e in waiting) == sorted(str(p) for p in recordings)
    assert all(e["quarantined"] is False and "unreachable" in e["reason"] for e in waiting)
    # the breaker opens at pause_after_failures in a row; uploads in flight then end too
    tries = len(setup.api.uploads)
    least = 1 if fault == "503-long" else SHIPPED  # the first asked for 600 s: enough said
    assert least <= tries <= SHIPPED + WORKERS - 1, tries
    assert {u.reply for u in setup.api.uploads} == {fault.split("-")[0]}
    for state, error in _reasons(setup, recordings).values():
        assert state == FileState.ERROR
        assert error is not None
        assert error.startswith("waiting: endpoint local unreachable: "), error
        assert WHY[fault] in error, error
    print(f"{fault}: {tries} tries, {took:.1f} s")  # the figures for the report (-s)


class DropsOne(FakeAPI):
    """Drops every upload of one file (a proxy that chokes on it); answers the others."""

    def _next_reply(self, upload: Upload) -> Reply:
        if upload.filename == "talk0.wav":
            return Reply(status=0, drop=True)
        return super()._next_reply(upload)


def test_once_quarantines_the_one_file_whose_upload_is_dropped_while_others_succeed(tmp_path):
    """once, 4 files, shipped settings, every upload of one file dropped while the others
    are answered: that file alone is quarantined after its max_attempts, the others done,
    exit 1 (a fault one file causes is that file's)."""
    with DropsOne() as api:
        setup = Setup(tmp_path, api)
        _shipped(setup)
        setup.data["endpoints"]["local"]["backoff_max"] = 0.5  # its five tries come quickly
        recordings = _recordings(setup)
        daemon = DaemonProcess(setup, "once")
        assert daemon.wait(timeout=60) == 1, daemon
        dropped = [u for u in api.uploads if u.reply == "drop"]
    [failed] = daemon.named("file.failed")
    assert failed["path"] == str(recordings[0])
    assert not daemon.named("file.waiting")
    assert sorted(e["path"] for e in daemon.named("file.done")) == [str(p) for p in recordings[1:]]
    assert len(dropped) == SHIPPED
    assert {u.filename for u in dropped} == {"talk0.wav"}
    assert (setup.inbox / "failed" / "talk0.wav").is_file()


def test_the_next_once_sends_the_files_left_at_attempt_1_when_the_endpoint_is_back(setup):
    """A once whose endpoint dropped every upload (exit 3) cost the files none of their
    attempts: the next once, the endpoint back, sends each at attempt 1 and does it."""
    _shipped(setup)
    setup.api.script.extend(Reply(status=0, drop=True) for _ in range(20))
    recordings = _recordings(setup)
    first = DaemonProcess(setup, "once")
    try:
        assert first.wait(timeout=30) == 3, first
    finally:
        first.kill()
    assert max(e["attempt"] for e in first.named("upload.started")) >= 2  # it was retried
    setup.api.script.clear()
    again = DaemonProcess(setup, "once")
    assert again.wait(timeout=30) == 0, again
    assert sorted(e["path"] for e in again.named("file.done")) == sorted(map(str, recordings))
    assert {e["attempt"] for e in again.named("upload.started")} == {1}


class DropsChunks(FakeAPI):
    """Drops every chunk of a long recording (Opus, ``.ogg``), once a whole file has been
    answered (a machine too busy to encode the chunks first must not change the story)."""

    def __init__(self) -> None:
        super().__init__()
        self.answered = threading.Event()

    def _next_reply(self, upload: Upload) -> Reply:
        if (upload.filename or "").endswith(".ogg"):
            self.answered.wait(patience(10))
            return Reply(status=0, drop=True)
        reply = super()._next_reply(upload)
        self.answered.set()
        return reply


def test_once_counts_the_chunks_of_one_recording_as_one_file(tmp_path):
    """once, a short file answered and a 70-s recording sent as three chunks, each chunk
    dropped every time: one recording's fault, not several files' (the chunks run side by
    side): it is quarantined, the short file done, exit 1."""
    with DropsChunks() as api:
        setup = Setup(tmp_path, api)
        _shipped(setup)
        setup.data["endpoints"]["local"]["backoff_max"] = 0.5
        setup.data["endpoints"]["local"]["max_upload_bytes"] = 300_000
        setup.data["defaults"]["chunk_seconds"] = 30
        short = make_wav(setup.inbox / "short.wav")
        long = make_wav(setup.inbox / "long.wav", seconds=70, freq=500)
        daemon = DaemonProcess(setup, "once")
        assert daemon.wait(timeout=60) == 1, daemon
        dropped = [u for u in api.uploads if u.reply == "drop"]
    assert [e["chunks"] for e in daemon.named("audio.split")] == [3]
    assert [e["path"] for e in daemon.named("file.done")] == [str(short)]
    [failed] = daemon.named("file.failed")
    assert failed["path"] == str(long)
    assert not daemon.named("file.waiting")
    assert len(dropped) >= SHIPPED  # a chunk used its attempts
    assert (setup.inbox / "failed" / "long.wav").is_file()

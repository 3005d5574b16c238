"""Session 22: a pause one worker process found is heeded by the others. Each process
kept its own breaker: a server asking for an hour's quiet (429 Retry-After) was asked
again by every other process, and an endpoint found down was found down by each."""

from __future__ import annotations

import json
import os
import signal

import pytest

from conftest import DaemonProcess, make_wav, wait_for
from dropscribe.transcribe.board import Board
from dropscribe.transcribe.breaker import Breaker
from fakeapi import openai_error


@pytest.mark.slow
def test_an_hours_pause_asked_of_one_process_holds_the_others_files_too(setup):
    """Two worker processes; the first upload is answered 429 Retry-After: 3600. Eight
    files dropped after it all wait, and the server is asked nothing more."""
    setup.data["processes"] = 2
    setup.data["workers"] = 4
    setup.api.script.append(
        openai_error(
            429, "Rate limit reached", code="rate_limit_exceeded", **{"Retry-After": "3600"}
        )
    )
    make_wav(setup.inbox / "first.wav", seconds=0.5)
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("endpoint.paused", timeout=60)
        made = [
            make_wav(setup.root / f"f{n}.wav", seconds=0.5, freq=200 + 20 * n) for n in range(8)
        ]
        for path in made:  # at once: settled together, handed to both processes
            path.rename(setup.inbox / path.name)
        ended = ("file.waiting", "file.done", "file.failed")

        def outcomes() -> dict[str, str]:
            return {e["path"]: e["event"] for e in daemon.events if e.get("event") in ended}

        wait_for(lambda: len(outcomes()) == 9, 60, what="nine files' outcomes")
        assert set(outcomes().values()) == {"file.waiting"}, (outcomes(), setup.api.uploads)
        assert len(setup.api.uploads) == 1
        assert not list(setup.inbox.glob("*.txt"))
        heeded = [e for e in daemon.named("endpoint.paused") if e.get("by_process")]
        assert heeded, "the other process said why its files wait"
        assert "Retry-After" in heeded[0]["reason"]
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    finally:
        daemon.kill()


def test_a_pause_written_by_another_process_is_read_and_ones_own_is_not(tmp_path):
    """The board's entry of another pid is seen; this process's own entries are not."""
    board = Board(tmp_path)
    board.start(["a", "b"])
    board.set("a", "paused", "down", 503, 60.0)
    assert board.other("a") is None  # written by this process
    raw = (tmp_path / "endpoints.json").read_text().replace(f'"pid": {os.getpid()}', '"pid": 1')
    (tmp_path / "endpoints.json").write_text(raw)
    seen = Board(tmp_path).other("a")
    assert seen is not None
    assert (seen["state"], seen["reason"], seen["pid"]) == ("paused", "down", 1)


def test_a_heeded_pause_waits_its_time_and_ends_when_another_process_resumes():
    """A breaker heeding another's 60-s pause waits it out; an "ok" written after the
    pause ends it, an "ok" written before does not, and a shorter pause changes nothing."""
    breaker = Breaker()
    assert breaker.heed(100.0, 60.0, "down", asked=False, written=1000.0)
    assert breaker.wait(130.0) == pytest.approx(30.0)
    assert not breaker.heed(130.0, 10.0, "down", asked=False, written=1001.0)
    assert not breaker.resumed_elsewhere(999.0)
    assert breaker.wait(131.0) > 0
    assert breaker.resumed_elsewhere(1002.0)
    assert breaker.wait(131.0) == 0.0


def test_a_pause_of_its_own_is_not_ended_by_another_processes_success():
    """A breaker paused by its own failures stays paused when another process says ok."""
    breaker = Breaker(threshold=1)
    assert breaker.failed(100.0, "down") is not None
    assert not breaker.resumed_elsewhere(5000.0)
    assert breaker.wait(101.0) > 0


def test_a_later_process_of_the_same_run_keeps_the_pause_another_wrote(tmp_path):
    """A worker process ready after another paused an endpoint does not write "ok" over
    that pause; an entry of an earlier run (another main process) is replaced."""
    board = Board(tmp_path)
    board.set("a", "paused", "down", 503, 60.0)
    board.set("b", "paused", "old", 503, 60.0)
    raw = json.loads((tmp_path / "endpoints.json").read_text())
    raw["endpoints"]["a"]["pid"] = 1  # another worker process of this run
    raw["endpoints"]["b"].update(pid=1, run=1)  # a daemon before this one
    (tmp_path / "endpoints.json").write_text(json.dumps(raw))
    Board(tmp_path).start(["a", "b"])
    after = json.loads((tmp_path / "endpoints.json").read_text())["endpoints"]
    assert (after["a"]["state"], after["a"]["pid"]) == ("paused", 1)
    assert (after["b"]["state"], after["b"]["pid"]) == ("ok", os.getpid())

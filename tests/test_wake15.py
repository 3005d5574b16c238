"""wake15: a file that waits for a known moment (a long Retry-After's pause, a budget's
turn, every endpoint of its list paused) is tried again at that moment, not at the next
rescan, and holds no worker meanwhile; through the real dropscribe process and fake API.

Every test sets ``rescan_seconds: 3600``: before wake15 such a file came back only at the
next rescan, so each test timed out on main."""

from __future__ import annotations

import datetime as dt
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import API_KEY, DaemonProcess, make_wav, patience, wait_for
from fakeapi import FakeAPI, openai_error

pytestmark = pytest.mark.slow

COMMON = {"api_key_env": "DROPSCRIBE_TEST_KEY", "timeout": 10, "backoff_max": 0.2}
# The shortest Retry-After that frees the worker (transcribe/backoff.SLEPT_IN_PLACE is 30 s,
# a constant no setting changes): the test waits this long, no longer.
RETRY_AFTER = 31


def moment(event: dict[str, Any], field: str = "timestamp") -> float:
    """An event's ISO 8601 time (its own timestamp, or a field such as ``until``)."""
    return dt.datetime.fromisoformat(event[field]).timestamp()


def status_of(setup: Any, path: Path) -> dict[str, Any]:
    """``dropscribe status --json``'s entry for ``path``, as a user runs it."""
    found = setup.command("status", "--json")
    [shown] = [f for f in json.loads(found.stdout)["files"] if f["path"] == str(path)]
    return shown


def zone_with_midnight_at(when: float) -> str:
    """A POSIX TZ value whose local midnight falls at ``when`` (to the second): the day
    turns for the daemon then, by its own clock, without faking any clock."""
    east = -round(when) % 86400  # seconds east of UTC
    hours, rest = divmod(east, 3600)
    return f"WKF-{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def test_a_long_retry_after_is_tried_again_when_the_pause_ends(setup):
    """A 429 with a Retry-After past the in-place limit: the file waits (file.waiting with
    ``until`` = the pause's end, shown by status), then is sent again at that moment and
    done, although the next rescan is an hour away."""
    setup.data["rescan_seconds"] = 3600
    setup.data["workers"] = 1
    setup.api.script.append(
        openai_error(
            429,
            "Rate limit reached",
            code="rate_limit_exceeded",
            **{"Retry-After": f"{RETRY_AFTER}"},
        )
    )
    held = make_wav(setup.inbox / "held.wav", seconds=0.5)
    proc = DaemonProcess(setup)
    try:
        proc.wait_event("file.waiting", timeout=30)
        [said] = proc.named("file.waiting")
        until = moment(said, "until")
        asked = setup.api.uploads[0].at  # monotonic: its wall time is had from the event
        assert until == pytest.approx(moment(said) + RETRY_AFTER, abs=3)
        wait_for(lambda: proc.named("file.done"), timeout=RETRY_AFTER + 15, what="the file, after")
        [done] = proc.named("file.done")
        assert done["path"] == str(held)
        assert moment(done) >= until - 0.5  # not before the server's pause ended
        assert len(setup.api.uploads) == 2
        assert setup.api.uploads[1].at - asked >= RETRY_AFTER - 0.5
        assert not proc.named("file.failed")
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(30)


def test_a_reached_day_budget_is_tried_again_at_midnight(setup):
    """A folder's day budget takes one of its two 1-s files; the other waits with
    ``until`` = the next local midnight (the daemon's TZ puts it seconds away), and is
    sent when the day turns, not at the next rescan."""
    dear = setup.root / "dear"
    dear.mkdir()
    setup.data["endpoints"]["local"]["price_per_hour"] = 3600.0  # one an audio second
    setup.data["inboxes"] = [{"path": str(dear), "budget": {"per_day": 1.5}}]
    setup.data["rescan_seconds"] = 3600
    setup.data["workers"] = 1
    midnight = round(time.time() + patience(10))
    first, second = (make_wav(dear / f"{n}.wav", 1.0, freq=f) for n, f in (("a", 440), ("b", 660)))
    proc = DaemonProcess(setup, env={"TZ": zone_with_midnight_at(midnight)})
    try:
        proc.wait_event("file.waiting", timeout=10)
        [said] = proc.named("file.waiting")
        assert time.time() < midnight, "the machine was too slow to see the day before"
        assert moment(said, "until") == pytest.approx(midnight, abs=1)
        waiting = said["path"]
        shown = status_of(setup, Path(waiting))
        assert shown["state"] == "waiting"
        assert shown["action"] == f"nothing: tried again at {shown['next_try']}"
        assert moment(shown, "next_try") == moment(said, "until")  # until16: status's zone
        wait_for(lambda: len(proc.named("file.done")) == 2, timeout=10 + 10, what="both done")
        late = next(e for e in proc.named("file.done") if e["path"] == waiting)
        assert moment(late) >= midnight - 0.5
        assert {e["path"] for e in proc.named("file.done")} == {str(first), str(second)}
        assert not proc.named("file.failed")
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(30)


@pytest.mark.parametrize("processes", [1, 2])
def test_a_list_all_paused_frees_the_worker_and_resumes_when_one_is_back(setup, processes):
    """One worker (a process); a folder's two endpoints both down (503), each paused after
    a failure: the file waits (file.waiting, ``until`` the first pause's end) holding no
    worker, so another folder's file is done meanwhile; once one endpoint answers again,
    the file is sent to it and done, although the next rescan is an hour away (with worker
    processes, ``until`` crosses the pipe)."""
    with FakeAPI(api_key=API_KEY) as one, FakeAPI(api_key=API_KEY) as two:
        listed, plain = setup.root / "listed", setup.root / "plain"
        listed.mkdir()
        plain.mkdir()
        for name, server in (("a", one), ("b", two)):
            server.script.extend(
                openai_error(503, "overloaded", "server_error") for _ in range(200)
            )
            setup.data["endpoints"][name] = {
                "base_url": server.base_url,
                "pause_after_failures": 1,
                "pause_seconds": 3,
                **COMMON,
            }
        setup.data["inboxes"] = [
            {"path": str(listed), "endpoint": ["a", "b"]},
            {"path": str(plain)},
        ]
        setup.data["rescan_seconds"] = 3600
        setup.data["workers"] = processes
        setup.data["processes"] = processes
        stuck = make_wav(listed / "stuck.wav", seconds=0.5)
        proc = DaemonProcess(setup)
        try:
            proc.wait_event("file.waiting", timeout=30)
            [said] = proc.named("file.waiting")
            assert said["path"] == str(stuck)
            assert moment(said, "until") > moment(said)  # a pause's end, still to come
            other = make_wav(plain / "other.wav", seconds=0.3, freq=300)
            wait_for(other.with_suffix(".txt").exists, timeout=30, what="the other folder's file")
            two.script.clear()  # b is back
            wait_for(
                lambda: [e for e in proc.named("file.done") if e["path"] == str(stuck)],
                timeout=30,
                what="the file, on b",
            )
            assert stuck.with_suffix(".txt").exists()
            assert not proc.named("file.failed")
            assert two.uploads[-1].reply == "200"
        finally:
            proc.signal(signal.SIGTERM)
            proc.wait(30)

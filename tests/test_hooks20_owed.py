"""hooks20: a folder's hook is delivered at least once. It is owed in the ledger in the
write that records its file's end and the row goes once it has run; a daemon killed
(SIGKILL) while its hook runs leaves the row, and the next start runs the hook once more,
late (``"late": true``, ``DROPSCRIBE_LATE=1``). Through the real ``dropscribe`` process:
the hook records each call and blocks on a FIFO at its first, so the kill comes at a
known moment (the hook under way, its row committed)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

import pg
from conftest import DaemonProcess, make_wav, tmpfs, wait_for
from fakeapi import FakeAPI, openai_error
from fakechat import FakeChat
from test_attacks_ledgerfix import fill
from test_hosts import Host, drop, running
from test_steps33b import KEY as LLM_KEY
from test_steps33b import with_steps

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

# Each call's JSON (and DROPSCRIBE_LATE) appended to the log; the call numbered argv[3]
# then blocks until the test writes to the FIFO (or its reader goes away).
HOOK = """
import json, os, sys
log, fifo, blocking = sys.argv[1], sys.argv[2], int(sys.argv[3])
call = {"stdin": json.loads(sys.stdin.read()), "env_late": os.environ.get("DROPSCRIBE_LATE")}
with open(log, "a") as f:
    f.write(json.dumps(call) + "\\n")
with open(log) as f:
    now = len(f.readlines())
if now == blocking:
    with open(fifo) as f:
        f.read()
"""

# Each call recorded as HOOK does, and none blocks.
RECORD = (
    "import json, os, sys; open(sys.argv[1], 'a').write(json.dumps({'stdin': json.load(sys.stdin),"
    " 'env_late': os.environ.get('DROPSCRIBE_LATE')}) + chr(10))"
)


def calls(log: Path) -> list[dict[str, Any]]:
    """Each hook call: its JSON (``stdin``) and its DROPSCRIBE_LATE (``env_late``)."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


@contextlib.contextmanager
def blocking_hook(root: Path, blocking: int = 1) -> Iterator[tuple[list[str], Path]]:
    """The hook's command and its log; its call numbered ``blocking`` blocks, and is let
    go at the end."""
    script, log, fifo = root / "hook.py", root / "hook.jsonl", root / "hook.fifo"
    script.write_text(HOOK)
    os.mkfifo(fifo)
    try:
        yield [sys.executable, str(script), str(log), str(fifo), str(blocking)], log
    finally:  # the blocked first call (its own session: the kill spared it) ends
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


@pytest.fixture
def shared_api() -> Iterator[FakeAPI]:
    """The fake transcription API, for every host's key."""
    with FakeAPI() as server:
        yield server


def owed_rows(state: Path) -> list[tuple[str, str]]:
    """(path, outcome) of every hook the SQLite ledger holds owed."""
    with contextlib.closing(
        sqlite3.connect(f"file:{state}/ledger.sqlite3?mode=ro", uri=True)
    ) as db:
        return db.execute("SELECT path, outcome FROM hooks").fetchall()


def killed_in_hook(
    setup: Any, log: Path, call: int = 1, env: dict[str, str] | None = None
) -> DaemonProcess:
    """The daemon (with ``env``), started, given a.wav, SIGKILLed while a's hook runs
    (its call numbered ``call`` logged, its owed row committed): the daemon, for its events."""
    first = DaemonProcess(setup, env=env)
    try:
        first.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav")
        wait_for(lambda: len(calls(log)) == call, timeout=30, what=f"the hook's call {call}")
        wait_for(lambda: owed_rows(setup.state), timeout=30, what="its row committed")
    finally:
        first.kill()  # SIGKILL: the hook is under way
    return first


def ran_late(setup: Any, env: dict[str, str] | None = None) -> DaemonProcess:
    """The daemon started again (with ``env``) after ``killed_in_hook``: the hook owed
    runs late and its row goes; then killed: the daemon, for its events."""
    second = DaemonProcess(setup, env=env)
    try:
        second.wait_event("hook.late", timeout=30)
        second.wait_event("hook.ran", timeout=30)
        wait_for(lambda: not owed_rows(setup.state), timeout=30, what="the row gone")
    finally:
        second.kill()
    return second


@pytest.mark.parametrize(("outcome", "processes"), [("done", 1), ("failed", 1), ("done", 2)])
def test_a_hook_cut_by_a_kill_runs_once_more_late_at_the_next_start(
    setup: Any, outcome: str, processes: int
) -> None:
    """kill -9 while a's hook runs (a done, or quarantined; in a worker process too): the
    next start runs it once more with late true (and DROPSCRIBE_LATE=1), the JSON it had
    otherwise; then its row is gone (no later look can run it again), and b's hook runs
    as ever, a's not again."""
    with blocking_hook(setup.root) as (command, log):
        setup.data["defaults"]["hook"] = {"command": command}
        setup.data["rescan_seconds"] = 1
        setup.data["processes"] = processes
        if outcome == "failed":
            setup.api.script.append(openai_error(400, "Invalid file format."))
        first = killed_in_hook(setup, log)
        assert not first.named("hook.ran")
        second = DaemonProcess(setup)
        try:
            second.wait_event("hook.late", timeout=30)
            second.wait_event("hook.ran", timeout=30)
            wait_for(lambda: not owed_rows(setup.state), timeout=30, what="the row gone")
            make_wav(setup.inbox / "b.wav", freq=600)
            second.wait_event("hook.ran", count=2, timeout=30)
        finally:
            second.kill()
    before, late, other = calls(log)
    assert late["stdin"] == {**before["stdin"], "late": True}
    assert before["stdin"]["late"] is False
    assert before["stdin"]["outcome"] == outcome
    sidecars = [str(setup.inbox / "a.txt")] if outcome == "done" else []
    assert before["stdin"]["sidecars"] == sidecars
    assert (before["env_late"], late["env_late"]) == (None, "1")
    assert other["stdin"]["file"] == str(setup.inbox / "b.wav")
    assert len(second.named("hook.late")) == 1


def shared_owed(url: str) -> int:
    """How many hooks the PostgreSQL ledger holds owed."""
    with psycopg.connect(url, password=pg.PASSWORD, autocommit=True) as db:
        row = db.execute("SELECT count(*) FROM hooks").fetchone()
    return int(row[0]) if row else 0


@pytest.mark.timeout(300)
def test_two_hosts_run_the_hook_a_killed_host_owed_once(
    tmp_path: Path, shared_api: FakeAPI, pg_url: str
) -> None:
    """Host a is killed while its hook runs; hosts b and c, sharing the ledger, both look
    for it at each rescan once a's heartbeat is older than its lease: one of them runs
    it, late, and never both."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with blocking_hook(tmp_path) as (command, log):
        hosts = [Host(tmp_path, name, inbox, shared_api, pg_url) for name in "abc"]
        for one in hosts:
            one.data["defaults"]["hook"] = {"command": command}
        first = DaemonProcess(hosts[0])  # type: ignore[arg-type]
        try:
            first.wait_event("daemon.started", timeout=30)
            (path,) = drop(inbox, 0, 1)
            wait_for(lambda: len(calls(log)) == 1, timeout=30, what="the hook's first call")
            wait_for(lambda: shared_owed(pg_url) == 1, timeout=30, what="its row committed")
        finally:
            first.kill()
        with running(hosts[1:]) as procs:
            wait_for(lambda: shared_owed(pg_url) == 0, timeout=60, what="the late hook run")
            late = [e for p in procs for e in p.named("hook.late")]
            assert len(late) == 1
    before, again = calls(log)
    assert again["stdin"] == {**before["stdin"], "late": True}
    assert before["stdin"]["file"] == str(path)


def test_a_held_hook_runs_once_its_pending_after_is_dropped(setup: Any) -> None:
    """A done file's hook held for its pending move (done_dir full) runs, moved_to null,
    once the recording is deleted by hand and the rescan's sweep drops the pending row
    (it ran never before hooks20)."""
    log = setup.root / "hook.jsonl"
    command = [sys.executable, "-c", RECORD, str(log)]
    with tmpfs(setup.root / "done", "size=3m") as done:
        setup.data["inboxes"][0].update(done_dir=str(done))
        setup.data["defaults"].update(after="move", hook={"command": command})
        setup.data["rescan_seconds"] = 1
        fill(done)
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("daemon.started")
            make_wav(setup.inbox / "a.wav")
            daemon.wait_event("hook.deferred", timeout=30)
            (setup.inbox / "a.wav").unlink()
            daemon.wait_event("file.after_dropped", timeout=30)
            daemon.wait_event("hook.ran", timeout=30)
        finally:
            daemon.kill()
    (call,) = calls(log)
    assert call["stdin"]["moved_to"] is None
    assert call["stdin"]["sidecars"] == [str(setup.inbox / "a.txt")]


def test_the_steps_hook_cut_by_a_kill_runs_late_at_the_next_start(setup: Any) -> None:
    """kill -9 while the hook after a file's steps runs (its second call, after the one
    at done): the next start runs that one once more, late; the steps are not asked
    again and the done hook does not run again."""
    with FakeChat(api_key=LLM_KEY) as chat, blocking_hook(setup.root, 2) as (command, log):
        with_steps(setup, chat, translate_to=[])
        setup.data["defaults"]["hook"] = {"command": command}
        killed_in_hook(setup, log, call=2, env={"LLM_KEY": LLM_KEY})
        asked = len(chat.requests)
        ran_late(setup, env={"LLM_KEY": LLM_KEY})
    done, steps, late = calls(log)
    assert (done["stdin"]["outcome"], steps["stdin"]["outcome"]) == ("done", "steps")
    assert late["stdin"] == {**steps["stdin"], "late": True}
    assert len(chat.requests) == asked

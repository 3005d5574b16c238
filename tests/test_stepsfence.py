"""Steps after the transcript across hosts, nothing twice and nothing half-written
(stepsfence): real ``dropscribe run`` processes sharing a real PostgreSQL ledger, the fake
transcription API and a fake chat server that holds its answers until the test lets
them go. Races are made to happen, not hoped for: the chat server waits for both hosts'
requests, PostgreSQL's own lock queue holds both hosts where the race is, and a host is
paused (SIGSTOP) until its lease has been taken over."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

import pg
from conftest import wait_for
from fakeapi import FakeAPI
from fakechat import FakeChat, Reply
from test_hosts import drop, running
from test_stepclaims33 import LLM_KEY, host

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from conftest import DaemonProcess

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # real daemon processes

STALE = "# Stale\n\n## Summary\n\nWritten by a host whose claim ran out."


class GateChat(FakeChat):
    """The fake chat server answering nothing until ``release``; ``arrived`` counts the
    requests that are waiting. With ``stale`` set, the first request's answer is told
    apart from every later one (its host is the one that will have lost its claim)."""

    def __init__(self) -> None:
        super().__init__(api_key=LLM_KEY)
        self.release = threading.Event()
        self.stale = False
        self._count = threading.Condition()
        self._arrived = 0

    @property
    def arrived(self) -> int:
        with self._count:
            return self._arrived

    def reply(self, body: dict[str, Any]) -> Reply:
        with self._count:
            self._arrived += 1
            first = self._arrived == 1
        self.release.wait(120)
        reply = super().reply(body)
        if self.stale and first and reply.status == 200:
            reply.body["choices"][0]["message"]["content"] = STALE
        return reply


@pytest.fixture
def shared_api() -> Iterator[FakeAPI]:
    with FakeAPI() as server:
        yield server


@pytest.fixture
def chat() -> Iterator[GateChat]:
    with GateChat() as server:
        yield server
        server.release.set()


def connect(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(url, password=pg.PASSWORD, autocommit=True)


def waiting_on(url: str, table: str) -> int:
    """How many sessions wait for a lock on ``table`` (PostgreSQL's lock queue)."""
    with connect(url) as db:
        row = db.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
            (table,),
        ).fetchone()
    return int(row[0]) if row else 0


@contextlib.contextmanager
def queued_lock(url: str, table: str) -> Iterator[threading.Event]:
    """An exclusive lock on ``table`` asked for now, in a thread (it waits in PostgreSQL's
    queue behind whoever asked before); the event says it was granted; released when the
    block ends."""
    granted = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with connect(url) as db, db.transaction():
            db.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            granted.set()
            done.wait(60)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        yield granted
    finally:
        done.set()
        thread.join(30)


def outcomes(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_two_hosts_finishing_a_files_last_steps_at_once_run_its_hook_once(
    tmp_path, shared_api, pg_url, chat
):
    """Two hosts each write one of a file's two steps at the same moment, so each sees
    every step written: the hook with outcome ``steps`` runs once, on one host."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    log = tmp_path / "hooks.log"
    command = ["/bin/sh", "-c", f'echo "$DROPSCRIBE_OUTCOME" >> {log}']
    hosts = [host(tmp_path, n, inbox, shared_api, pg_url, chat) for n in ("a", "b")]
    for one in hosts:
        one.data["defaults"]["hook"] = {"command": command}
        one.data["ledger"]["lease_seconds"] = 30  # no lease runs out while locks are held
    with running(hosts) as procs:  # type: ignore[arg-type]
        (path,) = drop(inbox, 0, 1)
        # one host asks for the summary, the other (finding it claimed) the translation
        wait_for(lambda: chat.arrived >= 2, timeout=60, what="both hosts' chat requests")
        with connect(pg_url) as first:
            first.execute("BEGIN")
            first.execute("LOCK TABLE step_outputs IN ACCESS EXCLUSIVE MODE")
            chat.release.set()
            # each host has written its sidecars and waits to say so in step_outputs
            wait_for(lambda: waiting_on(pg_url, "step_outputs") >= 2, 60, "both writes")
            # queued behind both writes: granted once both are committed, and every
            # later look at step_outputs (each host's "are all steps written?") waits
            # behind it: each host then sees both steps written
            with queued_lock(pg_url, "step_outputs") as granted:
                wait_for(lambda: waiting_on(pg_url, "step_outputs") >= 3, 60, "the lock queued")
                first.execute("COMMIT")
                wait_for(granted.is_set, timeout=60, what="both writes committed")

        def settled() -> bool:
            ran = outcomes(log).count("steps")
            told = sum(len(p.named("hook.claimed_elsewhere")) for p in procs)
            return ran >= 2 or (ran == 1 and told >= 1)

        wait_for(settled, timeout=60, what="both hosts past the hook")
    by_host = [sorted(e["step"] for e in p.named("step.written")) for p in procs]
    assert sorted(by_host) == [["summary"], ["translate:de"]]  # one step on each host
    assert outcomes(log).count("steps") == 1
    assert path.with_suffix(".summary.md").exists()


def pause(proc: DaemonProcess) -> None:
    proc.signal(signal.SIGSTOP)


def test_a_host_paused_past_its_step_lease_writes_nothing_when_it_wakes(
    tmp_path, shared_api, pg_url, chat
):
    """A host paused (SIGSTOP) while its chat request is out loses the step's lease; the
    other host takes the step over and writes it. The paused host, woken with its answer,
    drops it (``step.fenced``): its result is not stored, its sidecars not written."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    a, b = (host(tmp_path, n, inbox, shared_api, pg_url, chat) for n in ("a", "b"))
    for one in (a, b):
        one.data["defaults"]["translate_to"] = []  # the summary alone
    chat.stale = True
    with running([a]) as (first,):
        (path,) = drop(inbox, 0, 1)
        wait_for(lambda: chat.arrived >= 1, timeout=60, what="a's chat request out")
        pause(first)  # a GC stall, a paused VM: its heartbeat stops, its lease runs out
        try:
            with running([b]) as (second,):
                chat.release.set()  # b's request answered; a's too, read when it wakes
                second.wait_event("claim.taken_over", timeout=60)
                second.wait_event("step.written", timeout=60)
                b_wrote = path.with_suffix(".summary.md").read_bytes()
                first.signal(signal.SIGCONT)
                first.wait_output(
                    lambda: bool(first.named("step.fenced") or first.named("step.written")),
                    60,
                    "a's answer handled",
                )
        finally:
            first.signal(signal.SIGCONT)
    assert chat.arrived == 2  # a's request, then b's
    assert b"Stale" not in b_wrote
    assert path.with_suffix(".summary.md").read_bytes() == b_wrote
    assert not first.named("step.written")
    assert not first.named("step.done")
    (fenced,) = first.named("step.fenced")
    assert fenced["step"] == "summary"
    leftovers = [p.name for p in inbox.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temp file of a's left behind
    with connect(pg_url) as db:
        (result,) = db.execute("SELECT result FROM steps WHERE step = 'summary'").fetchone() or (
            "",
        )
    assert "Stale" not in str(result)

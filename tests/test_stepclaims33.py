"""The steps after the transcript once across hosts, and promptly (stepclaims33): real
``dropscribe run`` processes sharing a real PostgreSQL ledger, or one on SQLite, the fake
transcription API and one fake chat server counting its requests."""

from __future__ import annotations

import collections
import signal
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, make_wav, wait_for
from fakeapi import FakeAPI
from fakechat import FakeChat, Reply
from test_hosts import Host, drop, running

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # real daemon processes

LLM_KEY = "llm-key-0123"
STEPS = ("summary", "translate:de")
MODEL_SECONDS = 0.4  # how long the fake model takes to answer: hosts overlap, as in life


class SlowChat(FakeChat):
    """The fake chat server, answering after a model's think time; with ``hold`` set, the
    next request is held (its host may be killed meanwhile) until ``release``."""

    def __init__(self) -> None:
        super().__init__(api_key=LLM_KEY)
        self.hold = False
        self.held = threading.Event()
        self.release = threading.Event()
        self._gate = threading.Lock()

    def reply(self, body: dict[str, Any]) -> Reply:
        with self._gate:
            hold, self.hold = self.hold, False
        if hold:
            self.held.set()
            self.release.wait(120)
        else:
            self.release.wait(MODEL_SECONDS)  # a model thinking, not a synchronisation
        return super().reply(body)


@pytest.fixture
def shared_api() -> Iterator[FakeAPI]:
    """The fake transcription API taking any host's key (test_hosts gives each its own)."""
    with FakeAPI() as server:
        yield server


@pytest.fixture
def chat() -> Iterator[SlowChat]:
    with SlowChat() as server:
        yield server
        server.release.set()


def with_steps(data: dict[str, Any], chat: FakeChat) -> None:
    data["endpoints"]["llm"] = {
        "kind": "chat",
        "base_url": chat.base_url,
        "api_key_env": "LLM_KEY",
        "max_attempts": 2,
        "backoff_max": 0.2,
        "timeout": 60,
    }
    data["defaults"].update(
        {
            "chat": {"endpoint": "llm", "model": "some-model"},
            "summary": True,
            "translate_to": ["de"],
        }
    )


class Stepping(Host):
    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "LLM_KEY": LLM_KEY}


def host(root: Path, name: str, inbox: Path, api: FakeAPI, url: str, chat: FakeChat) -> Stepping:
    made = Stepping(root, name, inbox, api, url)
    made.data["rescan_seconds"] = 600  # a rescan never rescues a step here
    with_steps(made.data, chat)
    return made


def started(procs: list[DaemonProcess]) -> collections.Counter[tuple[str, str]]:
    """(path, step) of every chat request begun, by every host."""
    return collections.Counter(
        (e["path"], e["step"]) for p in procs for e in p.named("step.started")
    )


def written(procs: list[DaemonProcess]) -> set[tuple[str, str]]:
    return {(e["path"], e["step"]) for p in procs for e in p.named("step.written")}


def test_hosts_sharing_a_ledger_ask_the_chat_model_once_per_step(
    tmp_path, shared_api, pg_url, chat
):
    """Two daemons sharing one PostgreSQL ledger and inbox: every step of every recording
    is asked of the chat model exactly once, by one host or the other, and written."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    hosts = [host(tmp_path, n, inbox, shared_api, pg_url, chat) for n in ("a", "b")]
    with running(hosts) as procs:  # type: ignore[arg-type]
        paths = drop(inbox, 0, 4)
        wanted = {(str(p), s) for p in paths for s in STEPS}
        wait_for(lambda: written(procs) >= wanted, timeout=60, what="every step written")
        for path in paths:
            assert path.with_suffix(".summary.md").exists()
            assert path.with_suffix(".de.srt").exists()
    asked = started(procs)
    assert asked == collections.Counter(wanted)  # each once, by one host
    done = [e for p in procs for e in p.named("step.done")]
    assert len(chat.requests) == sum(e["requests"] for e in done)
    assert len(done) == len(wanted)


def test_a_step_held_by_a_killed_host_is_finished_by_another_after_its_lease(
    tmp_path, shared_api, pg_url, chat
):
    """A host killed (-9) while its chat request is out keeps the step's claim until its
    lease runs out; then the other host takes the step over and writes it."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    a, b = (host(tmp_path, n, inbox, shared_api, pg_url, chat) for n in ("a", "b"))
    chat.hold = True
    with running([a]) as (first,):
        (path,) = drop(inbox, 0, 1)
        wait_for(chat.held.is_set, timeout=60, what="a's chat request out")
        with running([b]) as (second,):
            first.proc.kill()  # -9: no release, no goodbye; its lease runs out
            first.wait()
            killed_at = time.monotonic()
            wanted = {(str(path), s) for s in STEPS}
            wait_for(lambda: written([second]) >= wanted, timeout=60, what="b writes both steps")
            took = time.monotonic() - killed_at
    (held,) = [e["step"] for e in first.named("step.started")]
    assert (str(path), held) not in written([first])
    assert [e["step"] for e in second.named("step.started")].count(held) == 1
    assert second.named("claim.taken_over")  # the dead host's claim, after its lease
    assert took < 3 + 30  # lease_seconds, not a rescan (600 s)
    assert path.with_suffix(".summary.md").exists()
    assert path.with_suffix(".de.srt").exists()


def test_a_done_state_that_lands_after_a_later_stamped_one_gets_its_steps_at_once(setup, chat):
    """A file whose done state reaches the ledger after one stamped later (its write late
    against its own timestamp) gets its steps within seconds, not at the next rescan."""
    with_steps(setup.data, chat)
    setup.data["rescan_seconds"] = 600
    daemon = DaemonProcess(setup, env={"LLM_KEY": LLM_KEY})
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "first.wav")
        daemon.wait_event("step.written", 2, timeout=60)
        ledger = setup.state / "ledger.sqlite3"
        ghost = setup.inbox / "ghost.wav"  # the first's transcript under a later stamp
        with sqlite3.connect(ledger, timeout=30) as db:
            db.execute(
                "INSERT INTO files SELECT ?, inbox, size, mtime_ns, inode, fingerprint, key,"
                " state, formats, outputs, error, ?, next_try FROM files WHERE path = ?",
                (str(ghost), time.time() + 30, str(setup.inbox / "first.wav")),
            )
        db.close()
        # the stepper has looked at it: every later look starts after its stamp
        daemon.wait_output(
            lambda: any(e.get("path") == str(ghost) for e in daemon.named("step.written")),
            30,
            "the later-stamped file looked at",
        )
        make_wav(setup.inbox / "second.wav", freq=330.0)
        daemon.wait_event("file.done", 2, timeout=60)
        second = str(setup.inbox / "second.wav")
        daemon.wait_output(
            lambda: (
                {e.get("step") for e in daemon.named("step.written") if e.get("path") == second}
                >= set(STEPS)
            ),
            30,
            "the second file's steps",
        )
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.wait()

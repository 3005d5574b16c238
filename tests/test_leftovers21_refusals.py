"""leftovers21: what a chat model refused (``max_tokens``, a temperature) was honoured for
good, in memory from the first time it was read and in the ledger with no end, where a
transcription refusal lapses after a day (learned20, ``capabilities.updated``) and the
pair is asked again. A gateway whose model name moves to another model kept being sent
what the old one wanted. Now a step's refusal lapses the same way: a day after it was
last said, the next request asks again (one request), and a refusal said again holds
another day. The real daemon, the fake chat server; the refusals' rows aged in the real
ledger while the daemon runs."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import time
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, make_wav
from test_chat33 import chat, with_steps

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Setup
    from fakechat import FakeChat

pytestmark = pytest.mark.slow
__all__ = ["chat"]  # the fake chat server, as a fixture here

DAY = 86_400


def refusals(state: Path, older: float = 0.0) -> dict[str, float]:
    """Each refused param of new-model in the SQLite ledger and when it was last said;
    first made ``older`` seconds older."""
    with contextlib.closing(sqlite3.connect(state / "ledger.sqlite3", timeout=30)) as db, db:
        db.execute(
            "UPDATE capabilities SET updated = updated - ? WHERE model = 'new-model'"
            " AND verdict = 'refused'",
            (older,),
        )
        rows = db.execute(
            "SELECT param, updated FROM capabilities WHERE model = 'new-model'"
            " AND verdict = 'refused'"
        ).fetchall()
    return {str(param): float(updated) for param, updated in rows}


def test_a_step_refusal_lapses_after_a_day_and_is_asked_again(setup: Setup, chat: FakeChat):
    """new-model refuses max_tokens and temperature: learned at a's steps; b's steps, the
    refusals a minute old, send neither; c's, the refusals made 25 h old meanwhile, ask
    again (max_tokens, then a temperature, each refused once), learn them again (chat.learned), and
    the rows hold another day; every step is written."""
    with_steps(setup, chat, model="new-model", translate_to=[])
    daemon = DaemonProcess(setup, env={"LLM_KEY": "llm-key-0123"})
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav")
        daemon.wait_event("step.written", timeout=40)
        assert len(daemon.named("chat.learned")) == 2
        assert set(refusals(setup.state, older=60)) == {"max_tokens", "temperature"}
        asked = len(chat.requests)
        make_wav(setup.inbox / "b.wav", freq=600)
        daemon.wait_event("step.written", 2, timeout=40)
        fresh = chat.requests[asked:]
        assert fresh, chat.requests
        assert all("max_tokens" not in r and "temperature" not in r for r in fresh)
        assert len(daemon.named("chat.learned")) == 2
        refusals(setup.state, older=DAY + 3600)
        asked = len(chat.requests)
        make_wav(setup.inbox / "c.wav", freq=800)
        daemon.wait_event("step.written", 3, timeout=40)
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.wait()
    again = chat.requests[asked:]
    sent = [("max_tokens" in r, "temperature" in r) for r in again]
    assert sent == [(True, True), (False, True), (False, False)]  # each refused once
    assert chat.replies[-3:] == ["400", "400", "200"]
    learned = daemon.named("chat.learned")
    assert [e["refused"] for e in learned[2:]] == ["max_tokens", "temperature"]
    held = refusals(setup.state)
    assert all(when > time.time() - 600 for when in held.values()), held
    assert "max_completion_tokens" in again[-1]

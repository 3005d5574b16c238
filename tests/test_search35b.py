"""Steps' results are searchable (issue 35, item 3): a summary and a translation written by
the real daemon (fake transcription API, fake chat server) are found by the real
``dropscribe search``, on a SQLite ledger and on a real PostgreSQL one, each saying where it
was found and naming its sidecar; a ledger whose steps were done before the index is
indexed when it is opened."""

from __future__ import annotations

import signal
import sqlite3
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

import pg
from conftest import DaemonProcess, make_wav
from fakechat import FakeChat
from test_chat33 import with_steps
from test_search35 import search

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    with FakeChat(api_key="llm-key-0123") as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def ledgered(request: pytest.FixtureRequest, setup: Any) -> Any:
    """The fake API's inbox, on either ledger."""
    if request.param == "postgresql":
        secret = setup.root / "ledger.password"
        secret.write_text(pg.PASSWORD)
        setup.data["ledger"] = {
            "url": request.getfixturevalue("pg_url"),
            "password_file": str(secret),
        }
    return setup


def stepped(setup: Any, chat: FakeChat) -> DaemonProcess:
    """The daemon, once meeting.wav's transcript, summary and German translation are written."""
    with_steps(setup, chat)
    daemon = DaemonProcess(setup, env={"LLM_KEY": "llm-key-0123"})
    daemon.wait_event("daemon.started")
    make_wav(setup.inbox / "meeting.wav")
    daemon.wait_event("step.written", 2, timeout=30)
    return daemon


def test_a_summary_and_a_translation_are_found_with_their_sidecars(ledgered, chat):
    """A word only the summary holds is found in it (its sidecar named, untimed); a phrase
    only the German cues hold is found in the translation, with the cue's time; a word of
    the transcript is found in the transcript and in the translation, each said."""
    daemon = stepped(ledgered, chat)
    try:
        config = ledgered.write()
        inbox = ledgered.inbox
        code, found = search(config, '"action items"')
        assert code == 0
        (summary,) = found
        assert summary["found_in"] == "summary"
        assert summary["sidecar"] == str(inbox / "meeting.summary.md")
        assert summary["path"] == str(inbox / "meeting.wav")
        assert summary["start"] is None
        assert [summary["text"][a:b].lower() for a, b in summary["marks"]] == ["action", "items"]

        code, found = search(config, '"de transcript"')
        assert code == 0
        (german,) = found
        assert german["found_in"] == "translation"
        assert german["language"] == "de"
        assert german["sidecar"] == str(inbox / "meeting.de.txt")
        assert german["path"] == str(inbox / "meeting.wav")
        assert german["start"] == 0.0
        assert german["at"] == "0:00"

        found_in = sorted(h["found_in"] for h in search(config, "transcript")[1])
        assert found_in == ["transcript", "translation"]
        assert search(config, "transcript", "--language", "de")[1][0]["found_in"] == "translation"
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.wait()


def unindexed(setup: Any) -> None:
    """The summary's index entries and the steps' triggers gone, as in a ledger whose steps
    were done by a dropscribe from before steps were indexed."""
    if "ledger" not in setup.data:
        db = sqlite3.connect(setup.state / "ledger.sqlite3")
        with db:
            for trigger in ("insert", "update", "delete"):
                db.execute(f"DROP TRIGGER search_steps_{trigger}")
            db.execute(
                "INSERT INTO search_text (search_text, rowid, text, speaker)"
                " SELECT 'delete', s.id, json_extract(r.result, '$.markdown'), NULL"
                " FROM search_steps s JOIN steps r USING (key, step, shaping)"
                " WHERE r.step = 'summary'"
            )
            db.execute("DELETE FROM search_steps WHERE step = 'summary'")
        db.close()
        return
    with psycopg.connect(setup.data["ledger"]["url"], password=pg.PASSWORD) as db:
        db.execute("DROP TRIGGER search_steps_index ON steps")
        db.execute("DELETE FROM search_step_segments WHERE step = 'summary'")
        db.execute("DELETE FROM search_steps WHERE step = 'summary'")


def test_steps_done_before_the_index_are_indexed_when_the_ledger_is_opened(ledgered, chat):
    """A ledger whose summary was stored before steps were indexed (their triggers and
    entries gone) is indexed by the next dropscribe to open it: search finds the summary,
    and the German cues once each."""
    daemon = stepped(ledgered, chat)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    config = ledgered.write()
    unindexed(ledgered)

    (summary,) = search(config, '"action items"')[1]
    assert summary["found_in"] == "summary"
    assert summary["sidecar"] == str(ledgered.inbox / "meeting.summary.md")
    assert len(search(config, '"de transcript"')[1]) == 1

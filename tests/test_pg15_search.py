"""PostgreSQL searches passages as SQLite does (brief pg15): one ledger, copied by the real
``dropscribe ledger migrate``, answers the real ``dropscribe search`` alike on both
backends; a PostgreSQL ledger indexed one row a segment (by the dropscribe before) is
indexed by passages when opened; migrate copies the steps' results, so a summary is found
on PostgreSQL after the move."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

import pg
from conftest import old_package
from fakechat import FakeChat
from test_search35 import search
from test_search35b import stepped

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("DROPSCRIBE_TEST_POSTGRES"),
        reason="DROPSCRIBE_TEST_POSTGRES names no PostgreSQL server",
    ),
]

BEFORE = "74785ce5ad56f7eabf4ab3a402d0ee895c3ea5e5"  # main, PostgreSQL one row a segment

FILLER = "we walked along the quiet shore and counted every boat we saw that morning"

# Stored by the dropscribe under test (or the one of BEFORE): argv = sqlite path | pg url,
# password, the inbox. Three recordings: two speakers and a phrase across two segments; a
# long monologue (several passages, two words of one query in different segments); a
# text-only answer.
WRITE = """
import sys
from pathlib import Path
from dropscribe.vocab.states import JobKey
root = Path(sys.argv[3])
if sys.argv[1].startswith("postgresql"):
    from dropscribe.ledger.places import Places
    from dropscribe.ledger.postgres import PostgresLedger
    from dropscribe.vocab.config import SharedLedger
    ledger = PostgresLedger(
        SharedLedger(sys.argv[1], sys.argv[2], "old", 30.0),
        Places([("inbox", root)]),
        daemon=False,
    )
else:
    from dropscribe.ledger.store import SqliteLedger
    ledger = SqliteLedger(Path(sys.argv[1]))
filler = "FILLER"
def seg(n, text, who=None):
    found = {"id": n, "start": 10.0 * n, "end": 10.0 * n + 9, "text": text}
    if who:
        found["speaker"] = who
    return found
talk = [
    seg(0, "good morning everyone", "Ana"),
    seg(1, "the road past the northern", "Ana"),
    seg(2, "bridge is closed until friday", "Ana"),
    seg(3, "then we take the ferry", "Ben"),
    seg(4, "and the ferry leaves at noon", "Ben"),
]
long = [seg(n, filler) for n in range(12)]
long[1] = seg(1, "the old lighthouse stood on the cliff")
long[3] = seg(3, "below it the harbour was busy")
long[9] = seg(9, "a second lighthouse far out at sea")
results = [
    {"text": "", "language": "en", "duration": 50.0, "segments": talk},
    {"text": "", "language": "en", "duration": 120.0, "segments": long},
    {"text": "lunch is served at the harbour cafe", "language": "en"},
]
for n, result in enumerate(results):
    result["text"] = result["text"] or " ".join(s["text"] for s in result["segments"])
    key = JobKey(str(n) * 64, "s" * 16)
    path = root / f"r{n}.wav"
    ledger.begin(path, "inbox", (1, 10**18 + n, n), key, {})
    ledger.finish(path, (key, result, None), [])
    ledger.file_done(path, ["txt"], [])
ledger.close()
""".replace("FILLER", FILLER)

QUERIES = [
    ['"northern bridge"'],
    ["northern", "--speaker", "ana"],
    ["ferry"],
    ["lighthouse"],
    ["lighthouse", "harbour"],
    ["harbour"],
    ["harbour -lighthouse"],
    ["light*"],
    ["boat", "-n", "50"],
    ["lunch"],
]


def write(argv: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run([sys.executable, "-c", WRITE, *argv], env=env, check=True, timeout=120)


def configs(setup: Any, url: str) -> tuple[Path, Path]:
    """The config without a shared ledger (SQLite in state_dir), and one with ``url``."""
    setup.data["inboxes"] = [{"path": str(setup.inbox), "name": "inbox"}]
    local = setup.write()
    secret = setup.root / "ledger.password"
    secret.write_text(pg.PASSWORD)
    setup.data["ledger"] = {"url": url, "password_file": str(secret)}
    shared = setup.root / "shared.yaml"
    setup.config_path = shared
    setup.write()
    return local, shared


def migrate(config: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dropscribe", "ledger", "migrate", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def alike(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results without their scores (bm25 and ts_rank differ), in one order."""
    kept = [{k: v for k, v in hit.items() if k != "score"} for hit in found]
    return sorted(kept, key=lambda h: (h["path"], h["start"] or 0, h["text"]))


def test_one_ledger_answers_alike_on_sqlite_and_postgresql(setup, pg_url):
    """Copied to PostgreSQL by ``ledger migrate``, a SQLite ledger's transcripts are found
    by the same queries at the same segments, with the same text, times, speakers and
    marks: a phrase across two segments, two words in different segments of a passage,
    speakers, exclusions, prefixes, a text-only transcript."""
    local, shared = configs(setup, pg_url)
    write([str(setup.state / "ledger.sqlite3"), "", str(setup.inbox)])
    migrate(shared)
    for query in QUERIES:
        on_sqlite = alike(search(local, *query)[1])
        assert on_sqlite, query
        assert alike(search(shared, *query)[1]) == on_sqlite, query
    (both,) = search(shared, "lighthouse", "harbour")[1]
    assert (both["path"], both["at"], both["text"]) == (
        str(setup.inbox / "r1.wav"),
        "0:10",
        f"the old lighthouse stood on the cliff {FILLER} below it the harbour was busy",
    )
    assert len(search(shared, "boat", "-n", "50")[1]) == 3  # 12 segments, 48 words a passage
    # a stem alone (english: bridges, bridge) is PostgreSQL's only: the passage, marked so
    assert search(local, "bridges")[1] == []
    (stem,) = search(shared, "bridges")[1]
    assert [stem["text"][a:b] for a, b in stem["marks"]] == ["bridge"]
    assert (stem["at"], stem["speaker"]) == ("0:00", "Ana")


def test_a_postgresql_ledger_indexed_by_segments_is_indexed_by_passages(setup, pg_url, tmp_path):
    """Transcripts the dropscribe before indexed one row a segment are indexed by passages
    once this one opens the ledger: a phrase across two segments is found, and the
    monologue of 12 segments is 3 rows."""
    _, shared = configs(setup, pg_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env["PYTHONPATH"] = str(old_package(BEFORE, tmp_path / "old"))
    write([pg_url, pg.PASSWORD, str(setup.inbox)], env=env)
    with psycopg.connect(pg_url, password=pg.PASSWORD) as db:
        before = db.execute("SELECT count(*) FROM search_segments").fetchone()
    assert before == (18,)  # one a segment: 5 + 12 + 1

    (found,) = search(shared, '"northern bridge"')[1]
    assert (found["at"], found["speaker"]) == ("0:10", "Ana")
    assert found["text"] == "the road past the northern bridge is closed until friday"
    with psycopg.connect(pg_url, password=pg.PASSWORD) as db:
        rows = db.execute("SELECT key, count(*) FROM search_segments GROUP BY key ORDER BY key")
        assert [n for _, n in rows] == [2, 3, 1]  # Ana, Ben; 3 passages; the text alone


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    with FakeChat(api_key="llm-key-0123") as server:
        yield server


def test_ledger_migrate_copies_a_summary_and_search_finds_it(setup, chat, pg_url):
    """A summary written by the daemon on SQLite is copied by ``ledger migrate`` (its step,
    the sidecars showing it): on PostgreSQL, search finds its words in the summary and
    names its sidecar by this host's path."""
    daemon = stepped(setup, chat)
    daemon.signal(signal.SIGTERM)
    daemon.wait()
    secret = setup.root / "ledger.password"
    secret.write_text(pg.PASSWORD)
    setup.data["ledger"] = {"url": pg_url, "password_file": str(secret)}
    shared = setup.write()
    said = migrate(shared)
    assert "steps: 2 copied" in said
    assert "step_outputs: 2 copied" in said
    code, found = search(shared, '"action items"')
    assert code == 0
    (summary,) = found
    assert summary["found_in"] == "summary"
    assert summary["sidecar"] == str(setup.inbox / "meeting.summary.md")
    assert summary["path"] == str(setup.inbox / "meeting.wav")
    assert [summary["text"][a:b].lower() for a, b in summary["marks"]] == ["action", "items"]

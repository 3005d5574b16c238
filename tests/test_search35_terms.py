"""The search query read into terms and written for FTS5 and to_tsquery (issue 35):
whatever is typed, it neither errors nor reaches either backend as syntax; and the
index the ledger's triggers keep (rewritten, deleted, text-only, unreadable results)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pg
from dropscribe.commands.search import clock, marked, window
from dropscribe.ledger import terms
from dropscribe.ledger.places import Places
from dropscribe.ledger.postgres import PostgresLedger
from dropscribe.ledger.search import Filters
from dropscribe.ledger.store import SqliteLedger
from dropscribe.vocab.config import SharedLedger
from dropscribe.vocab.states import JobKey

if TYPE_CHECKING:
    from collections.abc import Iterator

# What people type, and what breaks naive translations: FTS5's and tsquery's operators.
NASTY = st.text(
    alphabet=st.sampled_from(list("ab é\"*-():^{}+!&|<>'\\;NEAROTD\x00\u0301ﬁ٣_.,"))
    | st.characters(),
    max_size=40,
)


def test_words_phrases_exclusions_and_prefixes():
    """The syntax: words, a quoted phrase, -excluded (word or phrase), prefix*."""
    query = terms.parse('bridge "Northern  road" -closed -"not yet" repa* -')
    assert query.terms == (
        terms.Term(("bridge",)),
        terms.Term(("northern", "road")),
        terms.Term(("closed",), excluded=True),
        terms.Term(("not", "yet"), excluded=True),
        terms.Term(("repa",), prefix=True),
    )
    assert terms.fts5(query) == (
        'text : (("bridge" AND "northern road" AND "repa"*) NOT "closed" NOT "not yet")'
    )
    assert terms.tsquery(query) == (
        "('bridge') & ('northern' <-> 'road') & ('repa':*) & !(('closed')) & !(('not' <-> 'yet'))"
    )


def test_operators_are_words_and_accents_fold():
    """NEAR, OR, column filters and an open quote are text; Björn is bjorn."""
    query = terms.parse('NEAR(a b) OR speaker:ana "Björn')
    assert [t.words for t in query.terms] == [
        ("near", "a"),
        ("b",),
        ("or",),
        ("speaker", "ana"),
        ("bjorn",),
    ]
    assert terms.parse("-only -excluded").empty


def test_marks_and_their_display():
    """Marks fall on the query's words (a prefix's too); adjacent ones show as one."""
    query = terms.parse('"northern bridge" clos*')
    text = "The Northern bridge is closed."
    spans = terms.marks(text, query)
    assert [text[a:b] for a, b in spans] == ["Northern", "bridge", "closed"]
    assert marked(text, [list(s) for s in spans], colour=False) == (
        "The [Northern bridge] is [closed]."
    )
    assert marked("a\x1b[2Jb", [[0, 1]], colour=False) == "[a]\\x1b[2Jb"
    assert [clock(s) for s in (0, 75.9, 754, 3723)] == ["0:00", "1:15", "12:34", "1:02:03"]


def test_a_long_text_is_shown_around_its_first_mark():
    """An untimed transcript's hour of text is cut to a window around the first match,
    its marks moved with it."""
    text = " ".join(f"w{n}" for n in range(1000))
    at = text.index("w500 ")
    cut, spans = window(text, ((at, at + 4),))
    assert len(cut) < 320
    assert cut.startswith("...")
    assert cut.endswith("...")
    assert [cut[a:b] for a, b in spans] == ["w500"]


@pytest.fixture(scope="module")
def fts() -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE search_text USING fts5(text, speaker, content='',"
        " tokenize='unicode61 remove_diacritics 2')"
    )
    db.execute("INSERT INTO search_text (rowid, text, speaker) VALUES (1, 'a b c', 'secret')")
    yield db
    db.close()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed=NASTY, speaker=NASTY)
def test_no_typed_text_makes_fts5_fail_or_read_another_column(fts, typed, speaker):
    """Any query (and --speaker) is a valid MATCH; it never finds the speaker column's
    words in the text."""
    query = terms.parse(typed)
    if query.empty:
        return
    match = terms.fts5(query)
    if said := terms.fts5_phrase(speaker, "speaker"):
        match += f" AND {said}"
    fts.execute("SELECT rowid FROM search_text WHERE search_text MATCH ?", (match,)).fetchall()
    secret = terms.fts5(terms.parse(f"{typed} secret"))
    rows = fts.execute("SELECT rowid FROM search_text WHERE search_text MATCH ?", (secret,))
    assert rows.fetchall() == []


@pytest.fixture(scope="module")
def pgdb(pg_server) -> Iterator[psycopg.Connection]:
    url = pg_server.database()
    with psycopg.connect(url, password=pg.PASSWORD, autocommit=True) as db:
        yield db


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed=NASTY)
def test_no_typed_text_makes_to_tsquery_fail(pgdb, typed):
    """Any query is a valid tsquery in the simple and english configurations."""
    query = terms.parse(typed)
    if query.empty:
        return
    for config in ("simple", "english"):
        pgdb.execute("SELECT to_tsquery(%s::regconfig, %s)", (config, terms.tsquery(query)))


KEY = JobKey("e" * 64, "s" * 16)
SAID = {
    "text": "x",
    "language": "de",
    "segments": [
        {
            "id": 0,
            "start": 5.0,
            "end": 7.0,
            "text": "Die Brücken sind gesperrt",
            "speaker": "Ana Lima",
        },
        {"id": 1, "start": 8.0, "end": 9.0, "text": "bis Freitag", "speaker": "B"},
    ],
}


@contextlib.contextmanager
def both(tmp_path: Path, url: str) -> Iterator[list]:
    sqlite = SqliteLedger(tmp_path / "ledger.sqlite3")
    shared = PostgresLedger(
        SharedLedger(url, pg.PASSWORD, "h", 30.0), Places([("calls", tmp_path)]), daemon=False
    )
    try:
        yield [sqlite, shared]
    finally:
        sqlite.close()
        shared.close()


def store(ledger, result) -> None:
    path = Path("/nowhere/x.wav")
    ledger.begin(path, "calls", (1, 2, 3), KEY, {})
    ledger.finish(path, (KEY, result, None), [])


def raw(ledger, sql: str) -> None:
    """A statement of another writer (an older dropscribe, a person with sqlite3)."""
    if isinstance(ledger, SqliteLedger):
        ledger._write(lambda db: db.execute(sql))
    else:
        with ledger._db.tx() as db:
            db.execute(sql)


def test_the_index_follows_each_result_on_both_ledgers(tmp_path, pg_url):
    """A transcript is found (its speaker filter too), a rewritten one by its new words
    only, a text-only one untimed, an unreadable one stored unindexed, a deleted one not."""
    with both(tmp_path, pg_url) as ledgers:
        for ledger in ledgers:
            store(ledger, SAID)
            (hit,) = ledger.search(terms.parse("gesperrt"), Filters(speaker="ana"), 5)
            assert (hit.start, hit.speaker, hit.language) == (5.0, "Ana Lima", "de")
            assert hit.text[slice(*hit.marks[0])] == "gesperrt"
            assert ledger.search(terms.parse("gesperrt"), Filters(speaker="b"), 5) == []
            assert len(ledger.search(terms.parse("freitag"), Filters(language="german"), 5)) == 1

            store(ledger, {"text": "nur Text ohne Zeiten", "segments": []})
            assert ledger.search(terms.parse("gesperrt"), Filters(), 5) == []
            (hit,) = ledger.search(terms.parse("zeiten"), Filters(), 5)
            assert (hit.start, hit.text) == (None, "nur Text ohne Zeiten")

            raw(ledger, "UPDATE jobs SET result = 'not json'")
            assert ledger._rows("SELECT count(*) FROM jobs WHERE result = 'not json'") == [(1,)]
            assert ledger.search(terms.parse("zeiten"), Filters(), 5) == []

            raw(ledger, f"UPDATE jobs SET result = '{json.dumps(SAID)}'")
            assert len(ledger.search(terms.parse("freitag"), Filters(), 5)) == 1
            raw(ledger, "DELETE FROM jobs")
            assert ledger.search(terms.parse("freitag"), Filters(), 5) == []
        with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:
            assert db.execute("SELECT count(*) FROM search_docs").fetchone() == (0,)
        with psycopg.connect(pg_url, password=pg.PASSWORD) as db:
            rows = db.execute("SELECT count(*) FROM search_segments").fetchone()
            assert rows == (0,)

"""One index row a passage (search35c): a ledger indexed by the dropscribe of commit
``SEGMENTS`` (one row a segment) is indexed again when ``dropscribe search`` opens it;
a phrase said across two segments is found, each hit at the segment where its words
are; pure pieces."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from conftest import old_package
from dropscribe.ledger import terms
from test_search35_migrate import config, search

SEGMENTS = "a5cfd0f"  # main with one index row a segment

WRITE = """
import sys
from pathlib import Path
from dropscribe.vocab.states import JobKey
from dropscribe.ledger.store import SqliteLedger
ledger = SqliteLedger(Path(sys.argv[1]))
root = Path(sys.argv[2])
said = [
    ("the ferry leaves from the northern", "Ana"),
    ("bridge at six every morning", "Ana"),
    ("unless the river is frozen", "Ana"),
    ("then we take the bus", "Bo"),
]
segments = [
    {"id": n, "start": 60.0 + 5 * n, "end": 64.0 + 5 * n, "text": text, "speaker": who}
    for n, (text, who) in enumerate(said)
]
key = JobKey("a" * 64, "s" * 16)
path = root / "a.wav"
ledger.begin(path, "calls", (1, 10**18, 0), key, {})
result = {"text": "", "language": "en", "duration": 80.0, "segments": segments, "words": []}
ledger.finish(path, (key, result, None), [])
ledger.file_done(path, ["txt"], [])
ledger.close()
"""


@pytest.mark.slow
def test_a_ledger_indexed_a_row_a_segment_is_indexed_a_row_a_passage(tmp_path):
    """Indexed by the previous dropscribe, then searched: one row for Ana's three
    segments, one for Bo's; a phrase across two segments found at the first one's moment
    with both texts; a word found at its own segment; a speaker change is a boundary."""
    root = tmp_path / "site"
    root.mkdir()
    ledger = root / "state" / "ledger.sqlite3"
    path = config(root, "")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env["PYTHONPATH"] = str(old_package(SEGMENTS, tmp_path / "old"))
    args = [str(ledger), str(root / "calls")]
    subprocess.run([sys.executable, "-c", WRITE, *args], env=env, check=True, timeout=120)
    with sqlite3.connect(ledger) as db:
        assert db.execute("SELECT count(*) FROM search_text_docsize").fetchone() == (4,)

    (hit,) = search(path, '"northern bridge"')["results"]
    assert (hit["at"], hit["speaker"]) == ("1:00", "Ana")
    assert hit["text"] == "the ferry leaves from the northern bridge at six every morning"
    (hit,) = search(path, "frozen")["results"]
    assert (hit["at"], hit["text"]) == ("1:10", "unless the river is frozen")
    assert search(path, '"frozen then"')["results"] == []
    (hit,) = search(path, "bus")["results"]
    assert (hit["at"], hit["speaker"]) == ("1:15", "Bo")
    with sqlite3.connect(ledger) as db:
        rowids = db.execute("SELECT rowid FROM search_text_docsize ORDER BY rowid").fetchall()
        assert rowids == [(0,), (3,)]  # the transcript's id + each passage's first segment


def test_span_is_the_earliest_ending_fewest_segments_holding_every_term():
    """A phrase across a segment's end spans both; words apart: the first place they all are."""
    texts = ["the northern", "Bridge is closed", "northern bridge again"]
    assert terms.span(texts, terms.parse('"northern bridge"')) == (0, 1)
    assert terms.span(texts, terms.parse("again")) == (2, 2)
    assert terms.span(texts, terms.parse("closed northern")) == (0, 1)
    assert terms.span(texts, terms.parse("clos* -bridge")) == (1, 1)
    assert terms.span(texts, terms.parse("nowhere")) == (0, 0)

"""The SQLite index's dense rowids (search35b): a ledger indexed by the dropscribe of
commit ``SPARSE`` (rowids ``id << 24``) is indexed again when this one opens it, and
found as before; pure pieces of the layout."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from conftest import old_package
from test_search35_migrate import WRITE, config, search

pytestmark = pytest.mark.slow

SPARSE = "0c675f5"  # main with the first index layout (rowid: id << 24 + segment)


def test_a_sparse_index_is_made_dense_when_the_ledger_is_opened(tmp_path):
    """Transcripts indexed with rowids of ``id << 24`` are indexed again with dense rowids
    (0, 1 ...) when search opens the ledger, and found as before: phrase, moment, speaker."""
    root = tmp_path / "site"
    root.mkdir()
    calls = root / "calls"
    ledger = root / "state" / "ledger.sqlite3"
    path = config(root, "")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env["PYTHONPATH"] = str(old_package(SPARSE, tmp_path / "old"))
    write = WRITE.replace('assert not hasattr(ledger, "search"), "not the old code"', "")
    args = ["sqlite", str(ledger), "", str(calls)]
    subprocess.run([sys.executable, "-c", write, *args], env=env, check=True, timeout=120)
    db = sqlite3.connect(ledger)
    before = db.execute("SELECT rowid FROM search_text WHERE search_text MATCH 'noon'").fetchall()
    db.close()
    assert before == [(2 << 24,)]

    found = search(path, '"northern bridge"')["results"]
    assert [(h["path"], h["at"], h["speaker"]) for h in found] == [
        (str(calls / "a.wav"), "1:01", "Ana")
    ]
    assert [h["path"] for h in search(path, "noon")["results"]] == [str(calls / "b.wav")]
    db = sqlite3.connect(ledger)
    rowids = db.execute("SELECT rowid FROM search_text WHERE search_text MATCH 'noon OR bridge'")
    assert sorted(rowids.fetchall()) == [(0,), (1,)]
    db.close()

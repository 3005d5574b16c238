"""Ledgers written before the search index (issue 35), by the dropscribe of commit
``BEFORE`` itself, are indexed when this one opens them: SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

import pg
from conftest import old_package

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

BEFORE = "5a4900454bac5e08f144ef7cf14f7b87ec3f6234"  # main before the search index

# Run by the old code: two transcripts stored as its daemon stores them.
WRITE = """
import sys
from pathlib import Path
from dropscribe.vocab.states import JobKey
if sys.argv[1] == "sqlite":
    from dropscribe.ledger.store import SqliteLedger
    ledger = SqliteLedger(Path(sys.argv[2]))
else:
    from dropscribe.ledger.places import Places
    from dropscribe.ledger.postgres import PostgresLedger
    from dropscribe.vocab.config import SharedLedger
    ledger = PostgresLedger(
        SharedLedger(sys.argv[2], sys.argv[3], "old", 30.0),
        Places([("calls", Path(sys.argv[4]))]),
        daemon=False,
    )
assert not hasattr(ledger, "search"), "not the old code"
root = Path(sys.argv[4])
said = [("a", "the northern bridge is closed", "Ana"), ("b", "lunch is at noon", None)]
for n, (digit, text, who) in enumerate(said):
    key = JobKey(digit * 64, "s" * 16)
    path = root / f"{digit}.wav"
    ledger.begin(path, "calls", (1, 10**18, n), key, {})
    segment = {"id": 0, "start": 61.5, "end": 63.0, "text": text}
    if who:
        segment["speaker"] = who
    result = {"text": text, "language": "en", "duration": 64.0, "segments": [segment], "words": []}
    ledger.finish(path, (key, result, None), [])
    ledger.file_done(path, ["txt"], [])
ledger.close()
"""


def config(root: Path, ledger: str) -> Path:
    (root / "calls").mkdir(exist_ok=True)
    text = f"""
endpoints:
  here: {{kind: local}}
defaults: {{endpoint: here, model: tiny.en}}
inboxes:
  - {{path: {root / "calls"}, name: calls}}
state_dir: {root / "state"}
{ledger}
"""
    path = root / "dropscribe.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def search(path: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "dropscribe", "search", "-c", str(path), "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in {0, 1}, done.stderr
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_ledger_from_before_the_index_is_indexed_when_opened(tmp_path, request, kind):
    """Transcripts stored by the previous dropscribe are found by search once it opens
    the ledger: the phrase, its moment (1:01) and its speaker."""
    old = old_package(BEFORE, tmp_path / "old")
    root = tmp_path / "site"
    root.mkdir()
    calls = root / "calls"
    if kind == "sqlite":
        args = ["sqlite", str(root / "state" / "ledger.sqlite3"), "", str(calls)]
        path = config(root, "")
    else:
        url = request.getfixturevalue("pg_url")
        (root / "ledger.password").write_text(pg.PASSWORD)
        args = ["postgresql", url, pg.PASSWORD, str(calls)]
        path = config(root, f"ledger: {{url: '{url}', password_file: {root / 'ledger.password'}}}")
    # the old package is not ours to measure: coverage's subprocess patch left out
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env["PYTHONPATH"] = str(old)
    subprocess.run([sys.executable, "-c", WRITE, *args], env=env, check=True, timeout=120)

    found = search(path, '"northern bridge"')["results"]
    assert [(h["path"], h["at"], h["speaker"]) for h in found] == [
        (str(calls / "a.wav"), "1:01", "Ana")
    ]
    assert [h["path"] for h in search(path, "noon")["results"]] == [str(calls / "b.wav")]
    assert search(path, "noon", "--speaker", "ana")["results"] == []
    assert len(search(path, "bridge", "--speaker", "ana")["results"]) == 1

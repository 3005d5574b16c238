"""The ledger's statements: what they touch, and that none reads a whole table."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from typing import TYPE_CHECKING

import pytest

from dropscribe.ledger import groupcommit
from dropscribe.ledger.schema import LAYOUT
from dropscribe.ledger.store import SqliteLedger
from dropscribe.outputs import publish
from dropscribe.transcript import Transcript
from dropscribe.vocab.config import Inbox, Layer
from dropscribe.vocab.settings import FolderSettings, Format
from dropscribe.vocab.states import JobKey

if TYPE_CHECKING:
    from pathlib import Path

SETTINGS = {"model": "whisper-1"}


@pytest.fixture
def traced(tmp_path, monkeypatch):
    """A ledger whose every statement, on every connection, is recorded (values bound)."""
    statements: list[str] = []
    guard = threading.Lock()
    connect = groupcommit._connect

    def record(sql: str) -> None:
        with guard:
            statements.append(sql)

    def traced_connect(path):
        db = connect(path)
        db.set_trace_callback(record)
        return db

    monkeypatch.setattr(groupcommit, "_connect", traced_connect)
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    yield ledger, statements
    ledger.close()


def one_file_through(ledger: SqliteLedger, tmp_path, name: str) -> None:
    """Every call one recording makes on its way: found, begun, chunked, failed, retried,
    finished with sidecars, done."""
    source = tmp_path / f"{name}.wav"
    key = JobKey(name, "settings")
    ledger.record_file(source, "inbox", (1, 2, 3), name, key, "settling")
    ledger.file(source)
    job, attempt = ledger.begin(source, "inbox", (1, 2, 3), key, SETTINGS)
    assert (job, attempt) == (None, 1)
    ledger.save_plan(key, [(0.0, 60.0, 60.0, True), (60.0, 90.0, 90.0, False)])
    assert ledger.chunk_attempt(key.of_chunk(0), SETTINGS) == 1
    ledger.chunk_done(key, 0, {"text": "one"}, "req_0")
    ledger.chunk_plan(key)
    ledger.job_failed(key, "HTTP 503", 503, "req_1", "failed")
    ledger.record_file(source, "inbox", (1, 2, 3), name, key, "failed", "HTTP 503")
    ledger.forget_failure(source, key)
    assert ledger.owner_of(tmp_path / f"{name}.txt") is None
    chosen = ledger.finish(
        source, (key, {"text": "one two"}, "req_2"), [[tmp_path / f"{name}.txt"]]
    )
    assert chosen == [tmp_path / f"{name}.txt"]
    ledger.file_done(source, ["txt"], [tmp_path / f"{name}.txt"])
    ledger.job(key)


def test_no_statement_a_recording_makes_reads_a_whole_table(traced, tmp_path):
    """Every statement on a recording's way through the ledger searches an index: none
    scans a table, so a ledger of a year's transcripts costs each file what an empty
    one does (a LIKE on job keys once scanned every job inside the one writer's turn)."""
    ledger, statements = traced
    for n in range(3):
        one_file_through(ledger, tmp_path, f"rec{n}")
    ledger.close()
    plans = sqlite3.connect(tmp_path / "ledger.sqlite3")
    scans = {}
    dml = [
        s
        for s in set(statements)
        if s.split(None, 1)[0] in {"SELECT", "INSERT", "UPDATE", "DELETE"}
        and "sqlite_master" not in s  # the schema's own few rows, read once at opening
    ]
    assert any(s.startswith("DELETE FROM jobs") for s in dml)
    for sql in dml:
        steps = [row[3] for row in plans.execute(f"EXPLAIN QUERY PLAN {sql}")]
        if any(step.startswith("SCAN") for step in steps):
            scans[sql] = steps
    plans.close()
    assert scans == {}


def test_finishing_a_job_clears_its_chunk_attempts_and_no_one_elses(traced, tmp_path):
    """A finished job's per-chunk attempt rows go; those of jobs whose keys merely start
    alike, or hold LIKE's wildcards, stay."""
    ledger, _ = traced
    keys = [JobKey("a", shaping) for shaping in ["b", "bc", "b_", "b%", "b!"]]
    for key in keys:
        ledger.start_attempt(key, SETTINGS, 1)
        for idx in range(2):
            ledger.chunk_attempt(key.of_chunk(idx), SETTINGS)
    ledger.finish(tmp_path / "b.wav", (keys[0], {"text": "x"}, None), [])
    left = {row[0] for row in ledger._rows("SELECT key FROM jobs")}
    expected = {str(k) for k in keys} | {str(k.of_chunk(i)) for k in keys[1:] for i in range(2)}
    assert left == expected


def test_a_job_key_is_written_and_read_back_unchanged():
    """A job key, and a chunk's, survive the text the ledger and error reports keep."""
    key = JobKey("0" * 64, "f" * 16)
    assert str(key) == f"{'0' * 64}:{'f' * 16}"
    assert JobKey.parse(str(key)) == key
    assert str(key.of_chunk(3)).endswith("#0003")
    assert JobKey.parse(str(key.of_chunk(3))) == key.of_chunk(3)
    low, high = key.chunk_range()
    assert low < str(key.of_chunk(0)) < str(key.of_chunk(9999)) < high


def test_a_ledger_from_before_versions_is_stamped_and_keeps_its_rows(tmp_path):
    """A ledger written before the layout was versioned (user_version 0) opens as the
    current version with its rows intact."""
    from dropscribe.ledger import migrations

    path = tmp_path / "ledger.sqlite3"
    ledger = SqliteLedger(path)
    ledger.start_attempt(JobKey("abc", "def"), {}, 1)
    ledger.close()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("PRAGMA user_version = 0")
    ledger = SqliteLedger(path)
    assert ledger.job("abc:def").attempts == 1
    ledger.close()
    with closing(sqlite3.connect(path)) as db, db:
        (version,) = db.execute("PRAGMA user_version").fetchone()
    assert version == migrations.SCHEMA_VERSION


def test_a_ledger_from_a_newer_dropscribe_is_refused_by_run_and_status(setup):
    """A ledger whose layout is newer than this dropscribe knows: run and status each
    exit 2 with one line that says so, and the ledger is left as it was."""
    import subprocess
    import sys

    setup.state.mkdir()
    path = setup.state / "ledger.sqlite3"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("PRAGMA user_version = 99")
    env = {"PATH": "/usr/bin:/bin", **setup.env}
    for command in ("run", "status"):
        done = subprocess.run(
            [sys.executable, "-m", "dropscribe", command, "-c", str(setup.write())],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, (command, done.stderr)
        said = f"written by a newer dropscribe (layout 99; this one knows up to {LAYOUT.version})"
        assert said in done.stderr
        assert "Traceback" not in done.stderr
    with closing(sqlite3.connect(path)) as db, db:
        assert db.execute("PRAGMA user_version").fetchone() == (99,)


class Racing(SqliteLedger):
    """A ledger where another source claims ``stolen`` just before this one's claim."""

    stolen: Path | None = None

    def finish(self, source, done, choices, owner=None, claim=None):
        if self.stolen is not None:
            super().finish(self.stolen.with_suffix(".mp3"), None, [[self.stolen]])
            self.stolen = None
        return super().finish(source, done, choices, owner, claim)


def test_a_sidecar_name_claimed_by_another_source_meanwhile_is_looked_for_again(tmp_path, events):
    """The job chooses names from the ledger and the disk before its transaction; a
    name another source claims between the two is given up for the next one, and the
    transcript is stored once."""
    ledger = Racing(tmp_path / "state" / "ledger.sqlite3")
    inbox = Inbox(
        "in", tmp_path, recursive=True, include=("*.wav",), exclude=(), layers=(Layer({}),)
    )
    settings = FolderSettings(endpoint="e", model="whisper-1", formats=(Format.TXT,))
    source = tmp_path / "a.wav"
    ledger.stolen = tmp_path / "a.txt"
    key = JobKey("d" * 64, settings.shaping_hash())
    ledger.start_attempt(key, settings.shaping(), 1)
    try:
        written = publish.write(ledger, inbox, source, settings, Transcript("hi"), key, "d" * 64)
        assert written == [tmp_path / "a.wav.txt"]
        assert (tmp_path / "a.wav.txt").read_text() == "hi\n"
        assert not (tmp_path / "a.txt").exists()
        assert ledger.owner_of(tmp_path / "a.txt") == str(tmp_path / "a.mp3")
        [renamed] = [e for e in events if e["event"] == "sidecar.renamed"]
        assert renamed["sidecar"] == str(tmp_path / "a.wav.txt")
        job = ledger.job(key)
        assert job is not None
        assert job.result == {
            "text": "hi",
            "language": None,
            "duration": None,
            "segments": [],
            "words": [],
        }
    finally:
        ledger.close()

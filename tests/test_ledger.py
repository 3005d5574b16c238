"""The ledger's statements: what they touch, and that none reads a whole table."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from dropscribe import groupcommit
from dropscribe.journal import Journal, chunk_key

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
    journal = Journal(tmp_path / "ledger.sqlite3")
    yield journal, statements
    journal.close()


def one_file_through(journal: Journal, tmp_path, name: str) -> None:
    """Every call one recording makes on its way: found, begun, chunked, failed, retried,
    finished with sidecars, done."""
    source = tmp_path / f"{name}.wav"
    key = f"{name}:settings"
    journal.record_file(source, "inbox", (1, 2, 3), name, key, "settling")
    journal.file(source)
    job, attempt = journal.begin(source, "inbox", (1, 2, 3), key, SETTINGS)
    assert (job, attempt) == (None, 1)
    journal.save_plan(key, [(0.0, 60.0, 60.0, True), (60.0, 90.0, 90.0, False)])
    assert journal.chunk_attempt(chunk_key(key, 0), SETTINGS) == 1
    journal.chunk_done(key, 0, {"text": "one"}, "req_0")
    journal.chunk_plan(key)
    journal.job_failed(key, "HTTP 503", 503, "req_1", "failed")
    journal.record_file(source, "inbox", (1, 2, 3), name, key, "failed", "HTTP 503")
    journal.latest_failures()
    journal.forget_failure(source, key)
    chosen = journal.finish(
        source, (key, {"text": "one two"}, "req_2"), [[tmp_path / f"{name}.txt"]], lambda p: False
    )
    assert chosen == [tmp_path / f"{name}.txt"]
    journal.file_done(source, ["txt"], [tmp_path / f"{name}.txt"])
    journal.job(key)


def test_no_statement_a_recording_makes_reads_a_whole_table(traced, tmp_path):
    """Every statement on a recording's way through the ledger searches an index: none
    scans a table, so a ledger of a year's transcripts costs each file what an empty
    one does (a LIKE on job keys once scanned every job inside the one writer's turn)."""
    journal, statements = traced
    for n in range(3):
        one_file_through(journal, tmp_path, f"rec{n}")
    journal.close()
    plans = sqlite3.connect(tmp_path / "ledger.sqlite3")
    scans = {}
    dml = [
        s
        for s in set(statements)
        if s.split(None, 1)[0] in {"SELECT", "INSERT", "UPDATE", "DELETE"}
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
    journal, _ = traced
    keys = ["a:b", "a:bc", "a:b_", "a:b%", "a:b!"]
    for key in keys:
        journal.start_attempt(key, SETTINGS, 1)
        for idx in range(2):
            journal.chunk_attempt(chunk_key(key, idx), SETTINGS)
    journal.finish(tmp_path / "b.wav", ("a:b", {"text": "x"}, None), [], lambda p: False)
    left = {row[0] for row in journal._read("SELECT key FROM jobs")}
    expected = set(keys) | {chunk_key(k, i) for k in keys[1:] for i in range(2)}
    assert left == expected

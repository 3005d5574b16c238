"""attack17: a ledger another process holds locked (a long write transaction, as a
``sqlite3`` shell left in ``BEGIN`` holds it, or the ledger's write turn, as a stopped
dropscribe holds it): ``status`` and ``explain`` only read, so they answer at once
instead of waiting 30 s for "database is locked", or for ever on the turn. Through the
real ``dropscribe`` commands and fake API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from conftest import make_wav, patience
from test_lock17_held import TRANSACTION, holding

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

# Each holder takes its lock, says "held" and keeps it until its stdin closes.
HOLDERS = {
    "write transaction": TRANSACTION,
    "write turn": (
        "import fcntl, sys\n"
        "fd = open(sys.argv[1] + '.lock', 'a')\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    ),
}


@pytest.fixture(params=sorted(HOLDERS))
def held(request: pytest.FixtureRequest, setup: Any) -> Iterator[Any]:
    """A ledger with one finished file, locked by another process the way ``param`` says."""
    setup.data["workers"] = 1
    make_wav(setup.inbox / "a.wav")
    assert setup.command("once").returncode == 0
    with holding(setup.state / "ledger.sqlite3", HOLDERS[request.param]):
        yield setup


def run(setup: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """A dropscribe command as a user runs it; ended at a deadline that is far below the
    busy wait (30 s), so one that waits for the lock fails the test."""
    return subprocess.run(
        [sys.executable, "-m", "dropscribe", *args, "-c", str(setup.write())],
        capture_output=True,
        text=True,
        env={**os.environ, **setup.env},
        timeout=min(patience(8), 25),
        check=False,
    )


def test_status_reads_a_ledger_another_process_holds_locked(held: Any) -> None:
    """status answers with the ledger's counts while another process holds it locked."""
    shown = run(held, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    (inbox,) = json.loads(shown.stdout)["inboxes"]
    assert inbox["counts"]["done"] == 1


def test_explain_reads_a_ledger_another_process_holds_locked(held: Any) -> None:
    """explain says the file is done while another process holds the ledger locked."""
    path: Path = held.inbox / "a.wav"
    shown = run(held, "explain", str(path))
    assert shown.returncode == 0, shown.stderr
    assert "ledger: done" in shown.stdout

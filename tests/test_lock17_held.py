"""lock17: the SQLite ledger's write turn (a flock of ``ledger.sqlite3.lock``) held by
another process for ever (a dropscribe stopped with Ctrl-Z mid-commit, a stuck second
daemon) is waited for 30 s, as SQLite waits for a locked database; then the daemon's
file waits (said, nothing counted against it) and ``retry`` ends with exit 1 naming the
lock file and its holder. Through the real ``dropscribe`` process and command, with a
holder process made here (``holding``)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, make_wav, patience

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

WAIT = 30.0  # the ledger's wait for its write turn, as for a locked database

# Takes the flock of argv[1], says "held" and keeps it until its stdin closes.
HOLDER = (
    "import fcntl, sys\n"
    "fd = open(sys.argv[1], 'a')\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)
# Holds a write transaction on the database argv[1] (as a sqlite3 shell left in BEGIN
# IMMEDIATE does), says "held" and keeps it until its stdin closes.
TRANSACTION = (
    "import sqlite3, sys\n"
    "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "db.execute('BEGIN IMMEDIATE')\n"
    "db.execute('UPDATE files SET error = error')\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)


@contextlib.contextmanager
def holding(lock: Path, script: str = HOLDER) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``lock`` (as ``script`` takes it: the flock of that file,
    by default) until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        yield holder
    finally:
        assert holder.stdin is not None
        assert holder.stdout is not None
        if not holder.stdin.closed:
            holder.stdin.close()  # it lets go and ends
        holder.stdout.close()
        holder.wait(timeout=patience(10))


def takes(lock: Path) -> bool:
    """Whether another process can take the flock of ``lock`` now."""
    code = (
        "import fcntl, sys\n"
        "fd = open(sys.argv[1], 'a')\n"
        "try:\n"
        "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except BlockingIOError:\n"
        "    sys.exit(1)\n"
    )
    return subprocess.run([sys.executable, "-c", code, str(lock)], check=False).returncode == 0


# How another process holds the ledger (lock17's write turn; review17b: SQLite's own
# write transaction), and what the daemon and retry then say, naming the file and pid.
HELD = {
    "write turn": (
        "ledger.sqlite3.lock",
        HOLDER,
        "cannot take the ledger's write turn: {0} is held by process {1} (waited 30 s for it)",
    ),
    "write transaction": (
        "ledger.sqlite3",
        TRANSACTION,
        (
            "cannot write the ledger: {0} is in a write transaction of process {1}"
            " (database is locked; waited 30 s for it)"
        ),
    ),
}


def held_by(setup: Any, kind: str) -> tuple[Path, str, str]:
    """The file another process holds for ``kind``, its holder's script, the words."""
    name, script, words = HELD[kind]
    return setup.state / name, script, words


@pytest.mark.parametrize("kind", sorted(HELD))
def test_the_daemon_held_by_another_process_lets_the_file_wait_and_goes_on(
    setup: Any, kind: str
) -> None:
    """A recording arriving while another process holds the ledger (its write turn, or a
    write transaction): after the 30 s wait (not for ever) the file waits, the reason
    naming the held file and its holder, nothing counted against it (no job.crashed);
    once the holder lets go it is done, uploaded once."""
    setup.data["rescan_seconds"] = 1
    setup.data["workers"] = 1
    path = setup.inbox / "a.wav"
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        lock, script, words = held_by(setup, kind)
        with holding(lock, script) as holder:
            make_wav(path)
            daemon.wait_event("file.waiting", timeout=WAIT + 10)  # the 30 s wait, and more
        (waiting, *_) = daemon.named("file.waiting")
        assert waiting["path"] == str(path)
        assert waiting["reason"] == words.format(lock, holder.pid)
        assert waiting["quarantined"] is False
        daemon.wait_event("file.done", timeout=30)
    finally:
        daemon.kill()
    assert path.with_suffix(".txt").read_text() == "transcript of a.wav\n"
    assert len(setup.api.uploads) == 1
    assert not daemon.named("job.crashed")
    assert not (setup.inbox / "failed").exists()


@pytest.mark.parametrize("kind", sorted(HELD))
def test_retry_held_by_another_process_ends_with_exit_1_naming_file_and_holder(
    setup: Any, kind: str
) -> None:
    """retry, another process holding the ledger (its write turn, or a write
    transaction), ends after the 30 s wait with exit 1 and an error naming the held file
    and the holder's pid; nothing is moved."""
    planted = make_wav(setup.inbox / "failed" / "x.wav")
    report = {"reason": "planted", "source": str(setup.inbox / "x.wav"), "key": None}
    (planted.parent / "x.wav.error.json").write_text(json.dumps(report))
    assert setup.command("once").returncode == 0  # the ledger made
    lock, script, words = held_by(setup, kind)
    with holding(lock, script) as holder:
        done = subprocess.run(
            [sys.executable, "-m", "dropscribe", "retry", "--all", "-c", str(setup.write())],
            capture_output=True,
            text=True,
            env={**os.environ, **setup.env},
            timeout=WAIT + patience(10),
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert words.format(lock, holder.pid) in done.stderr
    assert planted.exists()
    assert not (setup.inbox / "x.wav").exists()

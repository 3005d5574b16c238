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


def test_the_daemon_held_from_its_write_turn_lets_the_file_wait_and_goes_on(setup: Any) -> None:
    """A recording arriving while another process holds the write turn: after the 30 s
    wait (not for ever) the file waits, the reason naming the lock file and its holder,
    nothing counted against it; once the holder lets go it is done, uploaded once."""
    setup.data["rescan_seconds"] = 1
    lock = setup.state / "ledger.sqlite3.lock"
    path = setup.inbox / "a.wav"
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        with holding(lock) as holder:
            make_wav(path)
            daemon.wait_event("file.waiting", timeout=WAIT + 10)  # the 30 s wait, and more
        (waiting, *_) = daemon.named("file.waiting")
        assert waiting["path"] == str(path)
        assert waiting["reason"] == (
            f"cannot take the ledger's write turn: {lock} is held by process {holder.pid}"
            " (waited 30 s for it)"
        )
        assert waiting["quarantined"] is False
        assert daemon.named("ledger.write_failed")  # the writes that nobody waited for
        daemon.wait_event("file.done", timeout=30)
    finally:
        daemon.kill()
    assert path.with_suffix(".txt").read_text() == "transcript of a.wav\n"
    assert len(setup.api.uploads) == 1
    assert not daemon.named("job.crashed")
    assert not (setup.inbox / "failed").exists()


def test_retry_held_from_the_write_turn_ends_with_exit_1_naming_lock_and_holder(
    setup: Any,
) -> None:
    """retry, the write turn held by another process, ends after the 30 s wait with exit
    1 and an error naming the lock file and the holder's pid; nothing is moved."""
    planted = make_wav(setup.inbox / "failed" / "x.wav")
    report = {"reason": "planted", "source": str(setup.inbox / "x.wav"), "key": None}
    (planted.parent / "x.wav.error.json").write_text(json.dumps(report))
    assert setup.command("once").returncode == 0  # the ledger made
    lock = setup.state / "ledger.sqlite3.lock"
    with holding(lock) as holder:
        done = subprocess.run(
            [sys.executable, "-m", "dropscribe", "retry", "--all", "-c", str(setup.write())],
            capture_output=True,
            text=True,
            env={**os.environ, **setup.env},
            timeout=WAIT + patience(10),
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert f"{lock} is held by process {holder.pid} (waited 30 s for it)" in done.stderr
    assert planted.exists()
    assert not (setup.inbox / "x.wav").exists()

"""processes: N: worker processes do the uploads; the main process watches and settles."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import subprocess
import sys
import urllib.request
import zlib
from pathlib import Path

import pytest

from conftest import DaemonProcess, children_of, make_wav, wait_for
from dropscribe.dispatch.child import FileKeyLocks, snapshot
from dropscribe.dispatch.processes import MergedCollector
from dropscribe.ops.metrics import Metrics

pytestmark = pytest.mark.slow


def workers_of(pid: int) -> list[int]:
    """Worker processes (multiprocessing spawn children) of a process."""
    found = []
    for child in children_of(pid):
        with contextlib.suppress(OSError):
            if b"spawn_main" in (Path("/proc") / str(child) / "cmdline").read_bytes():
                found.append(child)
    return found


@pytest.fixture
def procs(setup):
    setup.data["processes"] = 2
    setup.data["workers"] = 4
    return setup


def test_files_spread_over_processes_and_copies_upload_once(procs):
    """Two worker processes transcribe 30 files; copies under other names are not re-sent."""
    for n in range(24):
        make_wav(procs.inbox / f"f{n:02d}.wav", freq=200 + 10 * n)
    for n in range(6):  # the same content as f00..f05, under new names
        (procs.inbox / f"copy{n}.wav").write_bytes((procs.inbox / f"f{n:02d}.wav").read_bytes())
    daemon = DaemonProcess(procs)
    try:
        daemon.wait_event("daemon.started")
        assert len(workers_of(daemon.proc.pid)) == 2
        wait_for(lambda: len(list(procs.inbox.glob("*.txt"))) == 30, 60, what="30 transcripts")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()
    assert len(procs.api.uploads) == 24
    assert len({u.sha256 for u in procs.api.uploads}) == 24
    assert len(daemon.named("transcript.reused")) == 6
    assert daemon.named("daemon.stopped")[0]["done"] == 30
    assert workers_of(daemon.proc.pid) == []


def test_killed_worker_process_is_replaced_and_its_files_finished(procs):
    """kill -9 of a worker process mid-upload: it is started again, every file gets done."""
    procs.api.hold()
    daemon = DaemonProcess(procs)
    try:
        daemon.wait_event("daemon.started")
        for n in range(6):
            make_wav(procs.inbox / f"f{n}.wav", freq=300 + 50 * n)
        assert procs.api.wait_waiting(2, timeout=30)
        victim = workers_of(daemon.proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        daemon.wait_event("worker.died", timeout=20)
        procs.api.release()
        wait_for(lambda: len(list(procs.inbox.glob("*.txt"))) == 6, 60, what="6 transcripts")
        assert len(workers_of(daemon.proc.pid)) == 2
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        procs.api.release()
        daemon.kill()
    for n in range(6):
        assert (procs.inbox / f"f{n}.txt").read_text() == f"transcript of f{n}.wav\n"


def gone(pid: int) -> bool:
    """Exited (a zombie counts: whoever inherited it may not reap it)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_worker_processes_exit_when_the_main_process_is_killed(procs):
    """kill -9 of the main process: its worker processes see their pipe close and exit,
    rather than live on as orphans holding the ledger."""
    daemon = DaemonProcess(procs)
    try:
        daemon.wait_event("daemon.started")
        wait_for(lambda: len(workers_of(daemon.proc.pid)) == 2, 20, what="2 worker processes")
        children = workers_of(daemon.proc.pid)
        daemon.signal(signal.SIGKILL)
        daemon.wait()
        wait_for(lambda: all(gone(pid) for pid in children), 20, what="worker processes exit")
    finally:
        daemon.kill()


def test_once_with_processes_counts_failures_and_serves_metrics(procs):
    """`once` sums outcomes over processes (exit 1 for a failure); /metrics sums uploads."""
    for n in range(5):
        make_wav(procs.inbox / f"f{n}.wav", freq=300 + 50 * n)
    (procs.inbox / "broken.wav").write_bytes(b"not audio at all" * 100)
    daemon = DaemonProcess(procs, command="once")
    assert daemon.wait(60) == 1
    assert daemon.named("daemon.stopped")[0] == {
        **daemon.named("daemon.stopped")[0],
        "done": 5,
        "failed": 1,
    }

    (procs.inbox / "later.wav").write_bytes(make_wav(procs.root / "x.wav", freq=900).read_bytes())
    procs.data["metrics"] = {"port": 0}
    running = DaemonProcess(procs)
    try:
        running.wait_event("metrics.listening")
        url = running.named("metrics.listening")[0]["url"]
        wait_for((procs.inbox / "later.txt").exists, 30, what="later.txt")

        def uploads_counted() -> bool:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
            return 'dropscribe_uploads_total{endpoint="local",status="200"} 1.0' in text

        wait_for(uploads_counted, 20, what="the worker's upload in /metrics")
        running.signal(signal.SIGTERM)
        assert running.wait() == 0
    finally:
        running.kill()


def test_merged_metrics_sum_counters_and_take_the_largest_gauge():
    """Counters and histograms add up over processes; a gauge shows the largest value."""
    first, second = Metrics(), Metrics()
    first.uploads.labels("e", "200").inc(3)
    second.uploads.labels("e", "200").inc(4)
    first.latency.labels("e").observe(0.2)
    second.latency.labels("e").observe(0.3)
    second.paused.labels("e").set(1)
    merged = MergedCollector()
    merged.update(1, snapshot(first))
    merged.update(2, snapshot(second))
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in merged.collect()
        for s in family.samples
    }
    assert values[("dropscribe_uploads_total", (("endpoint", "e"), ("status", "200")))] == 7
    assert values[("dropscribe_upload_seconds_count", (("endpoint", "e"),))] == 2
    assert values[("dropscribe_endpoint_paused", (("endpoint", "e"),))] == 1
    assert not any(name.endswith("_created") for name, _ in values)


TRY_LOCK = """
import fcntl, os, struct, sys, zlib
fd = os.open(sys.argv[1], os.O_RDWR)
lock = struct.pack("hhqqi0q", fcntl.F_WRLCK, 0, zlib.crc32(sys.argv[2].encode()), 1, 0)
try:
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, lock)
except BlockingIOError:
    sys.exit(3)
"""


def test_file_key_lock_holds_one_key_against_other_processes(tmp_path):
    """While a job key is held, another process cannot take that key but can take any
    other; once released it can take it; all keys share one lock file."""
    path = tmp_path / "keys.lock"
    locks = FileKeyLocks(path)
    key, other = "ab" * 32 + ":settings", "cd" * 32 + ":settings"

    def takes(k: str) -> bool:
        probe = [sys.executable, "-c", TRY_LOCK, str(path), k]
        code = subprocess.run(probe, check=False).returncode
        assert code in (0, 3), code  # 3: blocked; anything else: the probe broke
        return code == 0

    with locks(key), locks(other + "-mine"):
        assert not takes(key)
        assert takes(other)
    assert takes(key)
    assert [p.name for p in tmp_path.iterdir()] == ["keys.lock"]


def test_file_key_lock_excludes_other_threads_of_the_same_process(tmp_path):
    """A held key is held against the same process too (another thread), which POSIX
    record locks, owned by the process, would not do: a probe with one fails."""
    path = tmp_path / "keys.lock"
    locks = FileKeyLocks(path)
    key = "ef" * 32 + ":settings"
    probe = struct.pack("hhqqi0q", fcntl.F_WRLCK, 0, zlib.crc32(key.encode()), 1, 0)
    with locks(key):
        fd = os.open(path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.fcntl(fd, fcntl.F_SETLK, probe)
        finally:
            os.close(fd)


def test_worker_processes_that_die_at_start_stop_the_daemon(procs, tmp_path):
    """Worker processes that die as they start are not restarted forever: the daemon
    logs why and exits 1, so that systemd's restart back-off takes over."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os, sys\nif '--multiprocessing-fork' in sys.argv:\n    os._exit(3)\n"
    )
    daemon = DaemonProcess(procs, env={"PYTHONPATH": str(site)})
    try:
        assert daemon.wait(60) == 1
    finally:
        daemon.kill()
    assert daemon.named("worker.died")[-1]["action"] == "giving up"
    assert daemon.named("worker.died")[-1]["exitcode"] == 3
    (failed,) = daemon.named("daemon.failed")
    assert "die as they start" in failed["error"]
    assert not any("Traceback" in line for line in daemon.raw)
    assert workers_of(daemon.proc.pid) == []


def test_an_endpoint_limit_below_the_process_count_is_said(procs):
    """With more worker processes than an endpoint's max_concurrency, each still uploads
    one file at a time to it: the daemon says so, and how many can run at once."""
    procs.data["endpoints"]["local"]["max_concurrency"] = 1
    make_wav(procs.inbox / "one.wav")
    daemon = DaemonProcess(procs, command="once")
    assert daemon.wait(60) == 0
    (said,) = daemon.named("endpoint.concurrency_raised")
    assert (said["endpoint"], said["max_concurrency"], said["at_most"]) == ("local", 1, 2)

"""attack18: the daemon's exit with worker processes (``processes: 2``): a second SIGTERM
stops at once, and takes the worker processes with it instead of leaving them to finish
their grace (printing after the shell's prompt, beside a daemon started again)."""

from __future__ import annotations

import signal

import pytest

from conftest import DaemonProcess, children_of, make_wav, wait_for

pytestmark = pytest.mark.slow


def living(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (not gone, not a zombie)."""
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.append(pid)
        except OSError:
            pass
    return alive


def test_a_second_sigterm_takes_the_worker_processes_with_it(setup):
    """processes: 2, two uploads held, shutdown_grace 60: SIGTERM, then SIGTERM again:
    exit 0 at once, no worker process left (each lived out its 60 s of grace after the
    main process had gone), and no sidecar written behind the main process's back."""
    setup.data.update(processes=2, workers=2, shutdown_grace=60)
    setup.data["endpoints"]["local"]["timeout"] = 120  # held, not timed out
    for n in range(4):
        make_wav(setup.inbox / f"f{n}.wav", seconds=1.0, freq=300.0 + 50 * n)
    setup.api.hold()
    daemon = DaemonProcess(setup)
    try:
        assert setup.api.wait_waiting(2, timeout=60)
        workers = [pid for pid in children_of(daemon.proc.pid) if living([pid])]
        assert len(workers) >= 2
        daemon.signal(signal.SIGTERM)
        daemon.wait_event("daemon.stopping")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0, daemon
        wait_for(lambda: not living(workers), 10, "the worker processes to be gone")
    finally:
        setup.api.release()
        daemon.kill()
    assert any("stopping at once" in line for line in daemon.raw)
    assert not [p.name for p in setup.inbox.iterdir() if p.suffix != ".wav"]

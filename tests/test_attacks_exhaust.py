"""The real ``dropscribe`` process against exhaustion: idle connections to /metrics,
the inotify watch limit reached while running, and reloads that must replace (and
close) what they replace."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from conftest import API_KEY, DaemonProcess, children_of, make_wav

pytestmark = pytest.mark.slow


def injected(setup, code: str) -> dict[str, str]:
    """Environment that runs ``code`` in the daemon's interpreters (a ``sitecustomize``
    module) before dropscribe starts."""
    folder = setup.root / "inject"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(code)
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    }


def sockets(pid: int) -> int:
    """Open sockets of a process and its worker processes."""
    count = 0
    for each in [pid, *children_of(pid)]:
        fds = Path(f"/proc/{each}/fd")
        for fd in fds.iterdir() if fds.exists() else []:
            try:
                count += os.readlink(fd).startswith("socket:")
            except OSError:
                continue
    return count


# ------------------------------------------------------------------ reloads


@pytest.mark.parametrize("processes", [1, "default"])
def test_a_fixed_key_file_is_used_at_once_after_sighup(setup, processes):
    """A wrong key in api_key_file pauses the endpoint; the right key written and SIGHUP:
    the waiting file goes at once with the new key, without waiting out the pause."""
    key = setup.root / "key"
    key.write_text("sk-wrong-key\n")
    endpoint = setup.data["endpoints"]["local"]
    del endpoint["api_key_env"]
    endpoint.update(api_key_file=str(key), pause_seconds=300)
    if processes == "default":
        del setup.data["processes"]
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav")
        daemon.wait_event("endpoint.paused")
        key.write_text(f"{API_KEY}\n")
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config.reloaded")
        daemon.wait_event("file.done", timeout=30)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()
    sent = [u.headers.get("authorization") for u in setup.api.uploads]
    assert sent[0] == "Bearer sk-wrong-key"
    assert sent[-1] == f"Bearer {API_KEY}"
    assert (setup.inbox / "a.txt").read_text() == "transcript of a.wav\n"


@pytest.mark.parametrize("processes", [1, 2])
def test_reloads_close_the_clients_they_replace(setup, processes):
    """Each reload that changes an endpoint replaces its HTTP client: the daemon's open
    sockets stay as many after six such reloads as after the first."""
    setup.data["processes"] = processes
    daemon = DaemonProcess(setup)
    counts = []
    try:
        daemon.wait_event("daemon.started")
        for n in range(7):
            setup.data["endpoints"]["local"]["timeout"] = 11 + n  # a new client
            setup.write()
            daemon.signal(signal.SIGHUP)
            daemon.wait_event("config.reloaded", count=n + 1)
            make_wav(setup.inbox / f"f{n}.wav", freq=200 + 40 * n)
            daemon.wait_event("file.done", count=n + 1)
            counts.append(sockets(daemon.proc.pid))
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()
    assert len(setup.api.uploads) == 7
    assert counts[-1] <= counts[0], counts

"""The real ``dropscribe`` process against exhaustion: idle connections to /metrics,
the inotify watch limit reached while running, and reloads that must replace (and
close) what they replace."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from conftest import API_KEY, DaemonProcess, children_of, make_wav, wait_for

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


# ------------------------------------------------------------------ /metrics

LOW_DESCRIPTOR_LIMIT = """
import resource

resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
"""


def scrape(url: str) -> str | None:
    import httpx

    try:
        answer = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    return answer.text if answer.status_code == 200 else None


def test_idle_connections_to_metrics_cannot_exhaust_the_daemon(setup):
    """A daemon limited to 256 descriptors, 300 idle connections held to /metrics while
    files are dropped: every file is done, the daemon lives, it never holds more than a
    few dozen sockets, and /metrics answers once the idlers are gone."""
    import socket

    setup.data["metrics"] = {"port": 0}
    daemon = DaemonProcess(setup, env=injected(setup, LOW_DESCRIPTOR_LIMIT))
    idlers: list[socket.socket] = []
    try:
        host, port = daemon.metrics_address()
        for _ in range(300):  # each connected once the server has taken the one before
            idler = socket.socket()
            idler.settimeout(2)
            idlers.append(idler)
            if idler.connect_ex((host, port)):
                break  # no longer taken: the damage is done
        for n in range(10):
            make_wav(setup.inbox / f"f{n}.wav", freq=200 + 30 * n)
        daemon.wait_event("file.done", count=10, timeout=60)
        assert daemon.proc.poll() is None
        assert sockets(daemon.proc.pid) < 40
        for idler in idlers:
            idler.close()
        idlers.clear()
        text = wait_for(
            lambda: scrape(f"http://{host}:{port}/metrics"), 20, what="/metrics to answer"
        )
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        for idler in idlers:
            idler.close()
        daemon.kill()
    assert 'dropscribe_files{state="done"} 10.0' in text
    assert not daemon.named("job.crashed")


# ------------------------------------------------------------------ the watch limit

# inotify as it behaves once fs.inotify.max_user_watches is used up: the inbox's own
# folder is watched, every folder after it refused (ENOSPC), as the kernel refuses it.
WATCH_LIMIT = """
import ctypes
import errno

from watchdog.observers import inotify_c

real = inotify_c.inotify_add_watch
given = []


def add_watch(fd, path, mask):
    if given and path not in given:
        ctypes.set_errno(errno.ENOSPC)
        return -1
    given.append(path)
    return real(fd, path, mask)


inotify_c.inotify_add_watch = add_watch
"""


def test_the_watch_limit_reached_while_running_switches_the_inbox_to_polling(setup):
    """inotify refuses the watch of a folder made while running: inbox.watch_limit is
    logged, the inbox is polled, and a file in the new folder is transcribed long
    before the rescan."""
    setup.data["rescan_seconds"] = 600
    setup.data["inboxes"][0]["poll_seconds"] = 0.5
    daemon = DaemonProcess(setup, env=injected(setup, WATCH_LIMIT))
    try:
        daemon.wait_event("daemon.started")
        (setup.inbox / "new").mkdir()
        daemon.wait_event("inbox.watch_limit")
        make_wav(setup.inbox / "new" / "deeper" / "a.wav")
        daemon.wait_event("file.done", timeout=30)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()
    limit = daemon.named("inbox.watch_limit")[0]
    assert "fs.inotify.max_user_watches" in limit["fix"]
    assert [e["mode"] for e in daemon.named("inbox.watching")] == ["native", "poll"]
    assert (setup.inbox / "new" / "deeper" / "a.txt").read_text() == "transcript of a.wav\n"

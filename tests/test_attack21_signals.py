"""attack21: SIGHUP and SIGUSR1 during start-up, through the real process. Only the stop
signals had a handler before ``_serve`` (long18), so by their default a reload
(logrotate's, a ``systemctl reload`` just after the start) or a look at the stacks
killed a daemon still starting (-1, -10). Now a SIGHUP heard then is a reload once it
serves, and SIGUSR1 dumps the stacks at once."""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time

import pytest

from conftest import DaemonProcess, patience, python, wait_for
from test_long18_signals import at_first_heavy_import, caught

pytestmark = pytest.mark.slow


def test_the_reload_and_stack_handlers_exist_before_the_first_heavy_import(setup):
    """The first import of YAML, pydantic, structlog, httpx, PyAV or the config's loader
    finds handlers for SIGHUP and SIGUSR1 in place (none: their default ended it)."""
    stderr = at_first_heavy_import(setup, "run", "SIGHUP", "SIGUSR1")
    first = stderr.splitlines()[0]
    assert first.split()[1:] == ["True", "True"], stderr


def test_a_sighup_while_starting_is_a_reload_once_it_serves(setup):
    """SIGHUP the moment the process has its first handlers (before the config is read):
    the daemon starts (it was killed by the signal), reads its config again
    (config.reloaded) and stops on SIGTERM with exit 0."""
    daemon = DaemonProcess(setup)
    try:
        wait_for(lambda: signal.SIGTERM in caught(daemon.proc.pid), 30, "the first handlers")
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config.reloaded", timeout=60)
        assert daemon.named("daemon.started"), daemon
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, daemon
    finally:
        daemon.kill()
    assert not [line for line in daemon.raw if "Traceback" in line], "".join(daemon.raw)


def test_a_sigusr1_while_starting_dumps_the_stacks_and_the_daemon_goes_on(setup):
    """SIGUSR1 the moment the process has its first handlers: the main thread's stack on
    stderr, then the daemon starts (it was killed by the signal) and stops with exit 0."""
    daemon = DaemonProcess(setup)
    try:
        wait_for(lambda: signal.SIGTERM in caught(daemon.proc.pid), 30, "the first handlers")
        daemon.signal(signal.SIGUSR1)
        daemon.wait_event("daemon.started", timeout=60)
        assert any(line.startswith("Current thread") for line in daemon.raw), daemon
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, daemon
    finally:
        daemon.kill()


STORM = textwrap.dedent(
    """
    import threading, time
    from dropscribe.commands import signals

    stop = threading.Event()
    signals.install(stop)
    for _ in range(20):  # a daemon's threads: each dump of the stacks writes them all
        threading.Thread(target=threading.Event().wait, daemon=True).start()
    print("ready", flush=True)
    stop.wait(600)
    print("stop", time.monotonic(), flush=True)
    """
)


def test_a_sigterm_after_a_storm_of_sigusr1_is_acted_on_at_once():
    """200,000 SIGUSR1 as fast as they can be sent, then SIGTERM: the stop is acted on
    within a second (3 s under load), not after a dump of the stacks for each SIGUSR1
    the pipe held (8 s for 100,000 on an idle machine)."""
    proc = python(STORM)
    dumps: list[str] = []
    reader = threading.Thread(
        target=lambda: dumps.extend(line for line in proc.stderr if "Current thread" in line)
    )
    reader.start()
    try:
        assert proc.stdout.readline() == "ready\n"
        for _ in range(200_000):
            os.kill(proc.pid, signal.SIGUSR1)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        said = proc.stdout.readline()
        assert said.startswith("stop "), said
        assert float(said.split()[1]) - sent < patience(1), len(dumps)
    finally:
        proc.kill()
        proc.wait()
        reader.join()
        proc.stdout.close()
        proc.stderr.close()

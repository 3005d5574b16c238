"""long18: stop signals during start-up, through the real process: a Ctrl-C to the
terminal's process group while the worker processes (``processes: 2``) start, and a
SIGTERM before the config is even read. Exit 0, no orphan, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import DaemonProcess, children_of, patience, wait_for
from test_attack18_exit import living

pytestmark = pytest.mark.slow


def caught(pid: int) -> set[int]:
    """The signals ``pid`` has a handler for (/proc's SigCgt mask)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return set()
    mask = int(next(line for line in status.splitlines() if line.startswith("SigCgt:"))[7:], 16)
    return {n for n in range(1, 65) if mask >> (n - 1) & 1}


def test_a_ctrl_c_while_the_worker_processes_start_is_a_clean_exit(setup):
    """processes: 2 in a terminal's process group: Ctrl-C (SIGINT to the group) as soon
    as the first worker process exists, while it imports: exit 0, every worker gone, no
    traceback (a worker not yet ignoring SIGINT died of a KeyboardInterrupt, and was
    started again as the main process stopped)."""
    setup.data.update(processes=2, workers=2)
    daemon = DaemonProcess(setup, group=True)
    try:
        workers = wait_for(lambda: children_of(daemon.proc.pid), 60, "a worker process")
        daemon.signal_group(signal.SIGINT)
        assert daemon.wait(60) == 0, daemon
        workers += children_of(daemon.proc.pid)
        wait_for(lambda: not living(workers), 10, "the worker processes to be gone")
    finally:
        daemon.kill()
    assert not [line for line in daemon.raw if "Traceback" in line], "".join(daemon.raw)
    assert not daemon.named("worker.died"), daemon


def test_a_sigterm_as_soon_as_the_process_catches_it_is_a_clean_exit(setup):
    """SIGTERM the moment the process has a handler for it (before the config is read):
    exit 0, not killed by the signal (-15 in its first 0.3 s), and nothing started."""
    daemon = DaemonProcess(setup, group=True)
    try:
        wait_for(lambda: signal.SIGTERM in caught(daemon.proc.pid), 30, "a SIGTERM handler")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, daemon
    finally:
        daemon.kill()
    assert not daemon.named("daemon.started"), daemon
    assert not [line for line in daemon.raw if "Traceback" in line], "".join(daemon.raw)


WATCH = textwrap.dedent(
    """
    import os, runpy, signal, sys
    HEAVY = {"yaml", "pydantic", "structlog", "httpx", "av", "dropscribe.loading.checked"}
    WATCHED = [getattr(signal, name) for name in os.environ["WATCHED"].split()]
    def hook(event, args):
        if event == "import" and args[0] in HEAVY and not getattr(hook, "said", False):
            hook.said = True
            handlers = [signal.getsignal(s) for s in WATCHED]
            print(args[0], *(callable(h) and h is not signal.default_int_handler
                             for h in handlers), file=sys.stderr, flush=True)
            os._exit(0)
    sys.addaudithook(hook)
    sys.argv = ["dropscribe", *sys.argv[1:]]
    runpy.run_module("dropscribe", run_name="__main__")
    """
)


def at_first_heavy_import(setup: Any, command: str, *signums: str) -> str:
    """The stderr of ``command`` ended at its first import of a heavy module, its first
    line saying, for each of ``signums`` (names: "SIGTERM"), whether dropscribe's own
    handler was in place then ("True"/"False")."""
    done = subprocess.run(
        [sys.executable, "-c", WATCH, command, "-c", str(setup.write())],
        capture_output=True,
        text=True,
        env={**os.environ, **setup.env, "WATCHED": " ".join(signums)},
        timeout=patience(60),
        check=False,
    )
    return done.stderr


@pytest.mark.parametrize("command", ["run", "once"])
def test_the_stop_handlers_exist_before_the_first_heavy_import(setup, command):
    """The first import of YAML, pydantic, structlog, httpx, PyAV or the config's loader
    finds dropscribe's own SIGTERM and SIGINT handlers in place (they came only after the
    config was read and checked: ~0.3 s in which SIGTERM ended the process by it)."""
    stderr = at_first_heavy_import(setup, command, "SIGTERM", "SIGINT")
    first = stderr.splitlines()[0]
    assert first.split()[1:] == ["True", "True"], stderr

"""flake16: a signal that the main thread gets to handle only after its wait's time is up
(a busy machine that does not run it for a tick) must not leave it waiting for ever.

Python 3.11's and 3.12's ``queue.SimpleQueue.get(timeout=...)``, interrupted by a signal, runs the
handlers, then works out the time left; if that is negative by then, it waits without a
limit. The main loop waits on its hints that way for up to a tick: a daemon stopped
late once sat there after SIGTERM until the test gave up. Here the lateness is made
certain: the whole process is stopped (SIGSTOP) for longer than a tick, the signal is
sent to its main thread, then the process goes on (SIGCONT).
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal
import time
from pathlib import Path

import pytest

from conftest import DaemonProcess, make_wav, wait_for
from dropscribe.service import TICK

LIBC = ctypes.CDLL(None, use_errno=True)
FUTEX = {"x86_64": "202", "aarch64": "98"}.get(platform.machine())  # its syscall number

pytestmark = pytest.mark.skipif(FUTEX is None, reason="futex's number here is not known")


def stopped(pid: int) -> bool:
    """Every thread of the process is stopped (state T)."""
    states = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
        except (OSError, IndexError):
            continue
    return bool(states) and all(state == "T" for state in states)


def main_thread(pid: int) -> tuple[str, int]:
    """The main thread's system call and address (``/proc/PID/syscall``'s first two
    fields; "running" when in none) and how often it has gone to sleep so far."""
    try:
        call = " ".join(Path(f"/proc/{pid}/syscall").read_text().split()[:2])
        status = Path(f"/proc/{pid}/task/{pid}/status").read_text()
    except OSError:
        return "gone", 0
    (line,) = [x for x in status.splitlines() if x.startswith("voluntary_ctxt_switches:")]
    return call, int(line.split()[1])


def idle_wait(pid: int) -> str:
    """The futex the main thread sleeps on when idle: the same one over three turns of
    the loop (its wait for hints; not a lock or the GIL at start-up or after a job)."""
    first: list[tuple[str, int]] = []

    def settled() -> str | None:
        call, sleeps = main_thread(pid)
        if not first or call != first[0][0]:
            first[:] = [(call, sleeps)] if call.split()[0] == FUTEX else []
            return None
        return call if sleeps >= first[0][1] + 3 else None

    found: str = wait_for(settled, what="the main thread idle in its wait")
    return found


def stopped_waiting(pid: int, wait: str) -> bool:
    """Stop the process; True if its main thread was caught in ``wait`` (else go on)."""
    os.kill(pid, signal.SIGSTOP)
    wait_for(lambda: stopped(pid), what="the daemon stopped")
    if main_thread(pid)[0] == wait:
        return True
    os.kill(pid, signal.SIGCONT)
    return False


def late(proc: DaemonProcess, signum: int) -> None:
    """Deliver ``signum`` to the daemon's main thread as a machine too busy to run it
    would: more than a tick after its wait began."""
    pid = proc.proc.pid
    wait = idle_wait(pid)
    wait_for(lambda: stopped_waiting(pid, wait), what="the main thread stopped in its wait")
    since = time.monotonic()  # the lapse is the case itself, not a wait for something
    wait_for(lambda: time.monotonic() - since > 3 * TICK, what="its wait's time up")
    if LIBC.tgkill(pid, pid, signum) != 0:  # the main thread's tid is the pid
        raise OSError(ctypes.get_errno(), "tgkill")
    os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize(
    "first",
    [signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1],
    ids=["term", "hup", "usr1-stacks"],
)
def test_a_signal_handled_late_does_not_leave_the_main_loop_waiting(setup, first):
    """A signal handled more than a tick late by the main thread (SIGTERM itself, a
    SIGHUP reload, SIGUSR1's stack dump) does not leave the loop stuck: SIGTERM then
    stops the daemon cleanly, with daemon.stopped (a file was done first, as in the
    run that failed)."""
    proc = DaemonProcess(setup)
    try:
        make_wav(setup.inbox / "a.wav")
        proc.wait_event("file.done")  # the loop has turned: its main thread idles in its wait
        late(proc, first)
        if first != signal.SIGTERM:
            proc.signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert proc.named("daemon.stopped")
    finally:
        proc.kill()

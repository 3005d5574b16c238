"""ci21: a signal the kernel hands to a thread other than the main one. Python runs its
handler on the main thread only, between two of its steps: a main thread blocked in a
long wait (a worker process's join through the grace) heard a second SIGTERM only when
the wait ended, and the daemon did not stop at once (CI, Python 3.12, under load). Here
the main thread blocks the signals, so that the kernel must hand them to another thread,
and then waits ten minutes: each is acted on all the same, as it arrives."""

from __future__ import annotations

import signal
import subprocess
import textwrap
import threading

from conftest import patience, python, wait_for

SCRIPT = textwrap.dedent(
    """
    import signal, sys, threading
    from dropscribe.commands import signals

    stop = threading.Event()
    relay = signals.install(stop)
    idle = threading.Event()
    threading.Thread(target=idle.wait, name="another", daemon=True).start()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1})
    print("ready", flush=True)
    stopped = stop.wait(600)
    print("stop", stopped, relay.reload.take(), flush=True)
    idle.wait(600)
    print("still here", flush=True)
    """
)


def test_signals_taken_by_another_thread_act_at_once_while_the_main_thread_waits():
    """Main thread blocking SIGTERM, SIGHUP and SIGUSR1, in a 600-s wait: SIGUSR1 dumps
    the stacks (the main thread's wait among them), SIGHUP raises the reload flag,
    SIGTERM ends the wait, and a second SIGTERM ends the process (exit 0) in its next
    600-s wait, with the "at once" line."""
    proc = python(SCRIPT)
    out: list[str] = []
    err: list[str] = []
    readers = [
        threading.Thread(target=lambda s=s, d=d: d.extend(s), daemon=True)
        for s, d in ((proc.stdout, out), (proc.stderr, err))
    ]
    for reader in readers:
        reader.start()
    try:
        wait_for(lambda: "ready\n" in out, 30, "the script ready")
        proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: any("in <module>" in line for line in err), 15, "the stacks")
        waiting = 1 + next(n for n, line in enumerate(SCRIPT.splitlines()) if "stop.wait" in line)
        assert any(f'"<string>", line {waiting} in <module>' in line for line in err)
        proc.send_signal(signal.SIGHUP)
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: any(line.startswith("stop ") for line in out), 15, "the wait ended")
        assert "stop True True\n" in out
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(patience(15)) == 0
    finally:
        proc.kill()
        proc.wait()
        for reader in readers:
            reader.join()
        for stream in (proc.stdout, proc.stderr):
            stream.close()
    assert "still here\n" not in out
    assert any("stopping at once" in line for line in err)


GONE = textwrap.dedent(
    """
    import os, threading
    from dropscribe.commands import signals

    stop = threading.Event()
    relay = signals.install(stop)
    print("ready", flush=True)
    os.close(2)  # the journal's stream gone
    print("stop", stop.wait(600), flush=True)
    threading.Event().wait(600)
    print("still here", flush=True)
    """
)


def test_a_second_stop_ends_the_process_with_its_stderr_gone():
    """stderr closed under the daemon: SIGUSR1 (no room for its stacks), then SIGTERM
    twice: the first ends the wait, the second the process (exit 0): the signals'
    thread did not die of the failed writes."""
    proc = python(GONE, stderr=subprocess.DEVNULL)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: "ready\n" in out, 30, "the script ready")
        proc.send_signal(signal.SIGUSR1)
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "stop True\n" in out, 15, "the wait ended")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(patience(15)) == 0
    finally:
        proc.kill()
        proc.wait()
        reader.join()
        proc.stdout.close()
    assert "still here\n" not in out

"""The daemon's signals: what a stop (SIGTERM, SIGINT), a reload (SIGHUP) and a look at
the stacks (SIGUSR1) do, from the first line of ``main`` to the process's end.

Apart from the commands (cli.py) because their rules are their own: while it serves, a
thread of their own acts on them as they arrive (``Relay``), and a stop asked twice ends
the process at once, its worker processes with it; before that (``EarlySignals``) a
handler runs on the main thread between two of its steps.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, NoReturn

from dropscribe.commands.console import EXIT_OK

if TYPE_CHECKING:
    from types import FrameType

STOPS = (signal.SIGTERM, signal.SIGINT)
EARLY = (*STOPS, signal.SIGHUP, signal.SIGUSR1)  # each the daemon handles, from the start
AT_ONCE = b"dropscribe: stopping at once; work in flight runs at the next start\n"
CLOSING = 1.0  # seconds the signals' thread is given to end (a stack dump under way)


class EarlySignals:
    """long18: a stop signal during start-up, before ``_serve``'s handlers exist (the
    config read, the engines' imports: ~0.3 s, seconds on a loaded machine). Installed
    first thing: a systemd stop or a Ctrl-C then ended the process by the signal (-15 and
    a KeyboardInterrupt's traceback). Heard once, start-up goes on and ``_serve`` stops
    before anything starts (exit 0); twice, it ends at once (nothing had started).

    attack21: SIGHUP and SIGUSR1 too: by their default a reload (logrotate's, a
    ``systemctl reload`` just after the start) or a look at the stacks killed a daemon
    still starting. A SIGHUP heard is a reload once it serves (the config it read may be
    older than the one the signal was sent for); SIGUSR1 dumps the stacks at once."""

    def __init__(self) -> None:
        self.heard: int | None = None  # the stop signal heard
        self.reload = False  # a SIGHUP heard
        self._before = {signum: signal.getsignal(signum) for signum in EARLY}
        if threading.current_thread() is threading.main_thread():  # else: no handlers
            for signum in EARLY:
                signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reload = True
            return
        if signum == signal.SIGUSR1:
            faulthandler.dump_traceback(all_threads=True)
            return
        if self.heard is not None:
            os._exit(EXIT_OK)
        self.heard = signum

    def release(self) -> None:
        """The dispositions from before again (a command that does not serve): a signal
        heard meanwhile is raised again, to be taken as it would have been."""
        if threading.current_thread() is threading.main_thread():
            for signum, before in self._before.items():
                signal.signal(signum, signal.SIG_DFL if before is None else before)
        if self.reload:
            signal.raise_signal(signal.SIGHUP)
        if self.heard is not None:
            signal.raise_signal(self.heard)


class SignalFlag:
    """Raised by the signal thread, taken down by the main loop."""

    def __init__(self) -> None:
        self._raised = False
        self._lock = threading.Lock()

    def raise_(self) -> None:
        with self._lock:
            self._raised = True

    def take(self) -> bool:
        """Whether it was raised since the last take (and lower it)."""
        with self._lock:
            raised, self._raised = self._raised, False
        return raised


def kill_workers() -> None:
    """attack18: the worker processes (``processes: N``) stopped with the main process: they
    ignore SIGTERM and SIGINT, and once it had gone they lived out ``shutdown_grace`` (their
    uploads too), printing after the shell's prompt, beside a daemon started again. Their
    sidecars are written whole or not at all, and the ledger is crash-safe."""
    spawned = sys.modules.get("multiprocessing")  # not imported: no worker process
    for child in spawned.active_children() if spawned is not None else []:
        with contextlib.suppress(OSError, TypeError):  # gone meanwhile (pid None)
            os.kill(child.pid, signal.SIGKILL)


def exit_now() -> NoReturn:
    kill_workers()
    os._exit(EXIT_OK)


class Relay:
    """ci21: what each signal does, done by a thread of its own as the signal arrives.

    Python runs a signal's handler on the main thread only, once that thread is between two
    of its steps; but the kernel may hand a process's signal to any of its threads, and
    then a main thread blocked in a wait (a worker process's join through the 60-s grace)
    hears of it only when the wait ends. A second SIGTERM then did not stop the daemon at
    once (seen under load, about one signal in twelve with busy threads). Every signal
    writes its number to a pipe (``signal.set_wakeup_fd``, in whichever thread took it);
    this thread reads it and acts, whatever the main thread is doing."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.stops = 0
        self.reload = SignalFlag()  # SIGHUP's: the main loop reloads the config when it takes it
        self._heard, self._told = os.pipe()  # close-on-exec: hooks, worker processes
        os.set_blocking(self._told, False)  # as set_wakeup_fd requires: a signal never waits
        self._thread = threading.Thread(target=self._run, name="dropscribe-signals", daemon=True)

    def act(self, signum: int) -> None:
        if signum in STOPS:
            self.stops += 1
            if self.stops == 1:
                self.stop.set()
                return
            # a second Ctrl-C or SIGTERM: at once (the ledger is crash-safe)
            with contextlib.suppress(OSError):  # stderr gone (its reader closed): still at once
                os.write(2, AT_ONCE)
            starts = sys.modules.get("dropscribe.dispatch.processes")
            if starts is None:  # not imported: no worker process
                exit_now()
            starts.halt(exit_now)  # now, or once a worker's start under way is done
        elif signum == signal.SIGHUP:
            self.reload.raise_()
        elif signum == signal.SIGUSR1:
            # a seemingly stuck daemon: every thread's stack, dumped with the GIL held. Not
            # faulthandler.register: its C handler walks the other threads' frames while
            # they run (CPython does not stop them for it), and the daemon died of SIGSEGV
            # once after a SIGUSR1 in tests/test_flake16_signals.py
            with contextlib.suppress(OSError, ValueError, RuntimeError):  # stderr gone
                faulthandler.dump_traceback(all_threads=True)

    def _run(self) -> None:
        """attack21: what the pipe holds is acted on at once, each stop in turn and each
        other signal once: acted on one by one, a storm of SIGUSR1 (100,000 in a second)
        queued a dump of the stacks each, and a SIGTERM after it waited 8 s for its turn,
        or was dropped with the pipe full. Nothing ``act`` does may end this thread: every
        stop after it would go unheard."""
        while numbers := os.read(self._heard, 65536):
            for signum in [n for n in numbers if n in STOPS] + sorted(set(numbers) - {*STOPS}):
                self.act(signum)

    def start(self) -> None:
        self._thread.start()
        # the pipe before the handlers: a signal between the two still reaches the relay
        # (and EarlySignals, which _serve then asks)
        signal.set_wakeup_fd(self._told, warn_on_full_buffer=False)
        for signum in EARLY:
            signal.signal(signum, _noted)

    def close(self) -> None:
        """At the end of ``_serve``: from now on a stop ends the process at once (nothing
        is left to wait for), and this thread is ended, the signals it had read acted on,
        so that the process is not taken for one whose threads still run (``cli._leave``
        ends those by ``os._exit``)."""
        for signum in STOPS:
            signal.signal(signum, _at_once)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.set_wakeup_fd(-1)
        os.close(self._told)  # the thread reads what is left, then the end of the pipe
        self._thread.join(CLOSING)
        if not self._thread.is_alive():  # else still dumping stacks: left to the exit
            os.close(self._heard)


def _noted(_signum: int, _frame: FrameType | None) -> None:
    """The Python handler, on the main thread: nothing (the relay has acted already)."""


def _at_once(_signum: int, _frame: FrameType | None) -> None:
    exit_now()


def install(stop: threading.Event, early: EarlySignals | None = None) -> Relay:
    """``_serve``'s signals: a stop sets ``stop`` (a second one ends the process at once),
    SIGHUP raises the returned relay's ``reload`` (raised already when ``early`` heard one
    during start-up), SIGUSR1 dumps every thread's stack, a crash leaves them in the
    journal. ``close()`` the relay when done serving."""
    # A crash (a fault in a native library) leaves every thread's stack in the journal;
    # a stderr without a file descriptor (captured in-process) has no room for it.
    with contextlib.suppress(ValueError, AttributeError):
        faulthandler.enable(all_threads=True)
    relay = Relay(stop)
    relay.start()
    if early is not None and early.reload:  # heard before the relay could
        relay.reload.raise_()
    return relay

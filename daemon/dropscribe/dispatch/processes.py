"""Worker processes (``processes: N``): the main process watches and settles, N
processes fingerprint, upload and write sidecars.

Python runs one thread at a time per process, and a small file costs a few
milliseconds of Python (HTTP, hashing, probing, rendering); with many small
files and a fast server that is the bottleneck, so the work spreads over
processes. Each one hosts its threads as the threaded mode does (``host``), with its own
ledger connection (SQLite serialises the writers), its own HTTP clients with a
share of each endpoint's ``max_concurrency``, and ``workers / processes``
threads. The same content under two names is still uploaded once: job keys are
locked across processes, on ``state_dir/keys.lock``. Outcomes and upload metrics
come back to the main process, which serves ``/metrics`` for all.

This is the main process's side; ``child.py`` is what runs in each worker
process. A child that dies is started again and its files re-settled.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from multiprocessing import resource_tracker
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from dropscribe.dispatch.child import (
    Figures,
    Finished,
    Reconfigure,
    Sender,
    Stop,
    Stopping,
    Take,
    receive,
    serve,
)
from dropscribe.dispatch.merged import MergedCollector
from dropscribe.jobs.job import Outcome, SettledFile, Tally
from dropscribe.vocab.config import STOP_MARGIN

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection
    from multiprocessing.context import SpawnProcess
    from typing import NoReturn

    from dropscribe.ops.metrics import Metrics
    from dropscribe.vocab.config import Config

log = structlog.get_logger("dropscribe")

QUICK_DEATH = 10.0  # seconds: a worker process dying younger than this died starting up
QUICK_DEATHS = 5  # in a row: give up (systemd's Restart= then backs off)
HEARING = 0.2  # seconds: how soon the children hear of a stop asked (the main loop's TICK)
# long18: what a worker ignores (child.py), blocked in the thread that starts it: the new
# process inherits the mask, so a Ctrl-C to the terminal's process group (or a SIGTERM to
# the service's) while it imports waits, pending, until it ignores them and unblocks;
# here, another thread takes it meanwhile (and tells the signals' thread, signals.py).
SHIELDED = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


class _Starts:
    """long18: the worker processes' starts as a second signal sees them (ci21: acted on by
    the signals' own thread, signals.py), in plain attributes. One start at a time: the
    pool's, then its reader thread's under the pool's lock."""

    under_way = 0
    end: Callable[[], NoReturn] | None = None  # the second signal's: kill them all, exit

    def ended(self) -> None:
        """``end`` carried out, if a second signal asked for it."""
        if self.end is not None:
            self.end()


_STARTS = _Starts()


def halt(end: Callable[[], NoReturn]) -> None:
    """A second signal's handler: ``end`` (the worker processes killed, the process gone)
    now, or, while one is being started, by its starter once it is (so that the new one is
    killed too: it was started as the main process went, an orphan). Each side counts
    itself before it looks at the other: one of the two sees the other."""
    _STARTS.end = end
    if not _STARTS.under_way:
        end()


def _say_raised_limits(config: Config) -> None:
    """Each process uploads at least one file at a time to each endpoint: say so where
    that adds up to more than the endpoint's max_concurrency."""
    for name, endpoint in config.endpoints.items():
        if endpoint.max_concurrency < config.processes:
            log.warning(
                "endpoint.concurrency_raised",
                endpoint=name,
                max_concurrency=endpoint.max_concurrency,
                processes=config.processes,
                at_most=config.processes,
                fix="set processes to at most max_concurrency, or accept this",
            )


@dataclass(eq=False)  # compared by identity
class _Child:
    index: int
    process: SpawnProcess
    send: Sender  # to it (if it is gone, its files come back when it is revived)
    results: Connection  # from it
    files: dict[Path, SettledFile] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    gone: bool = False  # seen dead (then replaced, unless the pool gave up or is closing)

    def close(self) -> None:
        self.send.close()
        self.results.close()


class ProcessPool:
    """The thread Pool's interface over worker processes."""

    def __init__(
        self,
        config: Config,
        *,
        once: bool,
        log_level: str,
        metrics: Metrics,
        on_done: Callable[[SettledFile], None],
        on_lost: Callable[[SettledFile], None],
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self._config = config
        # a stop began: the children are told at once (``tell_stopping``), and one that
        # dies is not started again
        self._stopping = stopping
        self._told = False  # of the stop
        self._once = once
        self._log_level = log_level
        self._metrics = metrics
        self._on_done = on_done
        self._on_lost = on_lost
        self._context = multiprocessing.get_context("spawn")
        self._wake_reader, self._wake = self._context.Pipe(duplex=False)
        self._threads = math.ceil(config.workers / config.processes)
        self._children: list[_Child] = []
        self._where: dict[Path, _Child] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._quick_deaths = 0
        self.failure: str | None = None  # set when worker processes cannot stay up
        self.tally = Tally()
        self._merged = MergedCollector()
        metrics.registry.register(self._merged)
        self._reader = threading.Thread(target=self._read, name="dropscribe-results")

    def start(self) -> None:
        _say_raised_limits(self._config)
        self._children = [self._spawn(index) for index in range(self._config.processes)]
        self._reader.start()

    def _spawn(self, index: int) -> _Child:
        _STARTS.under_way += 1
        try:
            _STARTS.ended()  # a second signal came first: no start
            # before the mask: starting its tracker, a spawn unblocks SIGINT and SIGTERM
            resource_tracker.ensure_running()
            with contextlib.ExitStack() as shield:
                shield.callback(
                    signal.pthread_sigmask,
                    signal.SIG_SETMASK,
                    signal.pthread_sigmask(signal.SIG_BLOCK, SHIELDED),
                )
                return self._started(index)
        finally:
            _STARTS.under_way -= 1
            _STARTS.ended()  # one came during the start: this worker is killed with the rest

    def _started(self, index: int) -> _Child:
        tasks_out, tasks_in = self._context.Pipe(duplex=False)
        results_out, results_in = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=serve,
            args=(index, self._config, self._once, self._log_level, tasks_out, results_in),
            name=f"dropscribe-worker-{index}",
        )
        process.start()
        tasks_out.close()  # the child's ends: closed here, so either side sees the other go
        results_in.close()
        return _Child(index, process, Sender(tasks_in), results_out)

    def submit(self, item: SettledFile) -> bool:
        """Hand a file to the least busy process; False when in flight or all are full."""
        with self._lock:
            living = [c for c in self._children if not c.gone]
            if self._closed or self._told or not living or item.path in self._where:
                return False
            child = min(living, key=lambda c: len(c.files))
            if len(child.files) >= self._threads * 2:
                return False
            child.files[item.path] = item
            self._where[item.path] = child
        child.send(Take(item))
        return True

    def in_flight(self, path: Path) -> bool:
        with self._lock:
            return path in self._where

    def idle(self) -> bool:
        with self._lock:
            return not self._where

    def counts(self) -> tuple[int, int]:
        """(queued, running)."""
        with self._lock:
            running = sum(min(len(c.files), self._threads) for c in self._children)
            return len(self._where) - running, running

    def reload(self, config: Config) -> None:
        """Hand a reloaded config to every process (its restart-only keys as they were)."""
        _say_raised_limits(config)
        with self._lock:
            self._config = config
            children = [c for c in self._children if not c.gone]
        for child in children:
            child.send(Reconfigure(self._config))

    def tell_stopping(self) -> None:
        """pool20: a stop was asked: every process told at once that no job and no upload
        starts from now on (``Stopping``), as this process's own ``abort`` tells its
        threads; not at ``close``, which the main loop may reach only a while later (a
        statement waiting for a lock, a reload): meanwhile a slot freed in a child started
        the next upload, paid for and then, the grace over, abandoned. The reader thread
        calls it within ``HEARING`` of ``stopping()``; ``close`` tells the grace."""
        with self._lock:
            if self._told:
                return
            self._told = True
            children = [c for c in self._children if not c.gone]
        for child in children:
            child.send(Stopping())

    def close(self, grace: float) -> int:
        """Stop every process: files not started are dropped, running ones get ``grace``
        seconds (plus ``STOP_MARGIN`` to report; each process's pool takes ``KEPT`` of it,
        ``Pool.close``); returns how many were still running."""
        with self._lock:
            self._closed = True
            children = [c for c in self._children if not c.gone]
        ends = time.monotonic() + grace  # the children's too, however late they hear it
        for child in children:
            child.send(Stop(ends))
        deadline = ends + STOP_MARGIN
        for child in children:
            child.process.join(max(0.0, deadline - time.monotonic()))
        stragglers = 0
        for child in children:
            if child.process.is_alive():
                stragglers += len(child.files)
                child.process.kill()
                child.process.join()
        self._wake.send(None)
        self._reader.join()
        for child in children:
            child.close()
        self._wake.close()
        self._wake_reader.close()
        return stragglers

    def _read(self) -> None:
        """Take what the children report; start again those that die; tell them of a stop
        (``tell_stopping``) as soon as it is asked."""
        while True:
            with self._lock:
                children = [c for c in self._children if not c.gone]
                hearing = None if self._told else HEARING
            sources: dict[Any, _Child] = {c.results: c for c in children}
            ready = wait(
                [self._wake_reader, *sources, *(c.process.sentinel for c in children)], hearing
            )
            if hearing is not None and self._stopping():
                self.tell_stopping()
            for conn in ready:
                child = sources.get(conn)
                if child is not None:
                    self._receive(child)
            if self._wake_reader in ready:
                return
            if ended := {r for r in ready if isinstance(r, int)}:
                self._revive(ended)

    def _receive(self, child: _Child) -> None:
        """Every message waiting from one child (a dead one's last words included)."""
        try:
            while child.results.poll():
                match receive(child.results):
                    case Finished(index, path, outcome, until):
                        self._done(index, Path(path), outcome, until)
                    case Figures(index, metrics):
                        self._merged.update(index, metrics)
        except (EOFError, OSError):
            return  # gone: its sentinel says so, and it is revived

    def _done(
        self, index: int, path: Path, outcome: Outcome | None, until: float | None = None
    ) -> None:
        with self._lock:
            child = self._where.get(path)
            if child is None or child.index != index:
                return
            del self._where[path]
            item = child.files.pop(path)
        if outcome is not None:
            self.tally.add(outcome)
            self._metrics.outcomes.labels(outcome).inc()
        self._on_done(replace(item, until=until))  # wake15: when a waiting file is tried

    def _revive(self, ended: set[int]) -> None:
        """Start a process that died again; its files go back to be settled. ``ended``:
        the sentinels that fired (the processes that have exited)."""
        dead: list[_Child] = []
        closing: list[_Child] = []
        with self._lock:
            if self._closed:
                # flakes19: ``close`` reaps them (join), this thread no longer does: two
                # threads reaping one process raced (this one's waitpid took its status, the
                # other's found none and called it alive: a worker that had ended, counted
                # as running by ``daemon.abandoned``); no longer waited on, last words read
                closing = [c for c in self._children if c.process.sentinel in ended]
                for child in closing:
                    child.gone = True
            else:
                dead = [c for c in self._children if not c.gone and not c.process.is_alive()]
        for child in closing:
            self._receive(child)
        for child in dead:
            self._receive(child)  # what it finished before it died is not lost
        lost: list[SettledFile] = []
        with self._lock:
            for child in dead:
                child.gone = True  # seen to: no longer waited on (a successor may follow)
                child.close()
                if self._closed or self._stopping():
                    continue  # stopping: its unstarted files are dropped with the rest
                quick = time.monotonic() - child.started < QUICK_DEATH
                self._quick_deaths = self._quick_deaths + 1 if quick else 0
                code = child.process.exitcode
                lost += child.files.values()
                for path in child.files:
                    self._where.pop(path, None)
                giving_up = self._quick_deaths >= QUICK_DEATHS
                log.error(
                    "worker.died",
                    worker=child.index,
                    exitcode=code,
                    files=len(child.files),
                    action="giving up" if giving_up else "started again",
                )
                if giving_up:
                    self.failure = (
                        f"worker processes die as they start ({QUICK_DEATHS} in a row,"
                        f" last exit code {code}); see the events before this one"
                    )
                    continue
                self._children[self._children.index(child)] = self._spawn(child.index)
        for item in lost:
            self._on_lost(item)

"""Worker processes (``processes: N``): the main process watches and settles, N
processes fingerprint, upload and write sidecars.

Python runs one thread at a time per process, and a small file costs a few
milliseconds of Python (HTTP, hashing, probing, rendering); with many small
files and a fast server that is the bottleneck, so the work spreads over
processes. Each one runs the same Processor as the threaded mode, with its own
ledger connection (SQLite serialises the writers), its own HTTP clients with a
share of each endpoint's ``max_concurrency``, and ``workers / processes``
threads. The same content under two names is still uploaded once: job keys are
locked across processes, on ``state_dir/keys.lock``. Outcomes and upload metrics
come back to the main process, which serves ``/metrics`` for all.

Children ignore SIGTERM, SIGINT and SIGHUP: the main process tells them to
stop or reload. A child that dies is started again and its files re-settled.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import multiprocessing
import os
import pickle
import signal
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field, replace
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client.metrics_core import Metric

from dropscribe import log as logmod
from dropscribe.errors import DropscribeError
from dropscribe.journal import LEDGER_NAME, Journal
from dropscribe.metrics import UPLOAD_FAMILIES, Metrics
from dropscribe.pool import Pool
from dropscribe.rules import inbox_of
from dropscribe.worker import Item, Processor, Tally, make_client

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from multiprocessing.connection import Connection
    from multiprocessing.context import SpawnProcess

    from dropscribe.config import Config, Endpoint

log = structlog.get_logger("dropscribe")

METRICS_SECONDS = 2.0  # how often children send their upload metrics
QUICK_DEATH = 10.0  # seconds: a worker process dying younger than this died starting up
QUICK_DEATHS = 5  # in a row: give up (systemd's Restart= then backs off)


class FileKeyLocks:
    """A lock per job key that holds across processes and threads: an open-file-description
    lock (``F_OFD_SETLKW``) on one byte of a single file, at an offset taken from the key.

    OFD locks belong to an open file, not to a process, so each acquisition opens the
    file anew and two threads of one process exclude each other too; closing releases
    it, also when the process dies. One file serves every key: no file per key, as
    creating files is the costly part (on a busy ext4 a new inode costs ~0.5 ms).
    """

    # struct flock: l_type, l_whence, l_start, l_len, l_pid, padded as C pads it
    _FLOCK = struct.Struct("hhqqi0q")

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        self._path = path

    @contextlib.contextmanager
    def __call__(self, key: str) -> Iterator[None]:
        # crc32 is the same in every process; two jobs share a byte once in 4 billion
        offset = zlib.crc32(key.encode())
        fd = os.open(self._path, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLKW,
                        self._FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0))  # fmt: skip
            yield
        finally:
            os.close(fd)  # releases the lock


def share(endpoint: Endpoint, processes: int) -> Endpoint:
    """One process's part of an endpoint's concurrency (at least one upload)."""
    return replace(endpoint, max_concurrency=max(1, endpoint.max_concurrency // processes))


# ---------------------------------------------------------------- the child


def serve(
    index: int,
    config: Config,
    once: bool,
    log_level: str,
    tasks: Connection,
    results: Connection,
) -> None:
    """A worker process: take files from ``tasks`` until None (or the main process is
    gone), report on ``results``."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    logmod.configure(config.log_format, log_level, final=True)
    processes = config.processes
    threads = math.ceil(config.workers / processes)
    current = {"config": config}
    journal = Journal(config.state_dir / LEDGER_NAME)
    clients = {name: make_client(share(ep, processes)) for name, ep in config.endpoints.items()}
    abort = threading.Event()
    metrics = Metrics()
    put = Sender(results)

    def report(item: Item, outcome: str | None) -> None:
        put(("done", index, str(item.path), outcome))

    processor = Processor(
        journal, clients, abort, once=once, metrics=metrics,
        inbox_of=lambda path: inbox_of(current["config"], path),
        key_lock=FileKeyLocks(config.state_dir / "keys.lock"),
        report=report,
    )  # fmt: skip
    pool: Pool[Item] = Pool(threads, processor, key=lambda item: item.path, queue_size=threads * 4)
    pool.start()
    stopped = threading.Event()
    reporter = threading.Thread(
        target=_report_metrics, args=(index, metrics, put, stopped), name="dropscribe-metrics"
    )
    reporter.start()
    try:
        while True:
            try:
                message = receive(tasks)
            except (EOFError, OSError):
                break  # the main process is gone
            if message is None:
                break
            if message[0] == "file":
                path = Path(message[1])
                inbox = inbox_of(current["config"], path)
                if inbox is None or not pool.submit(Item(inbox, path)):
                    put(("done", index, str(path), None))
            elif message[0] == "config":
                current["config"] = _reconfigure(processor, current["config"], message[1])
    finally:
        abort.set()
        stopped.set()
        reporter.join()
        stragglers = pool.close(config.shutdown_grace)
        if not stragglers:
            for client in processor.clients():
                client.close()
            journal.close()
        put(("metrics", index, snapshot(metrics)))


def _report_metrics(index: int, metrics: Metrics, put: Sender, stopped: threading.Event) -> None:
    while not stopped.wait(METRICS_SECONDS):
        put(("metrics", index, snapshot(metrics)))


def _reconfigure(processor: Processor, old: Config, new: Config) -> Config:
    """Apply a reloaded config; the process and thread counts stay as started."""
    new = replace(new, workers=old.workers, processes=old.processes)
    processor.update_endpoints(
        {n: share(e, old.processes) for n, e in old.endpoints.items()},
        {n: share(e, old.processes) for n, e in new.endpoints.items()},
    )
    return new


def receive(conn: Connection) -> Any:
    """A message from the other end of a pipe only our own processes hold."""
    return pickle.loads(conn.recv_bytes())  # noqa: S301 (as Connection.recv does)


class Sender:
    """One end of a pipe, shared by threads. Pipes, not multiprocessing queues: a queue
    hands each message to a feeder thread, and waking it costs more than the write;
    plain pickle, as nothing sent needs multiprocessing's pickler (which copies its
    dispatch table for every message).
    A reader that is gone is not an error: the main process revives a dead child, and
    a child without its main process stops at its next read."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def __call__(self, message: tuple[Any, ...] | None) -> None:
        with self._lock, contextlib.suppress(OSError):
            self._conn.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))

    def close(self) -> None:
        """Not while another thread writes: its descriptor could be reused meanwhile."""
        with self._lock:
            self._conn.close()


Snapshot = list[tuple[str, str, str, list[tuple[str, dict[str, str], float]]]]


def snapshot(metrics: Metrics) -> Snapshot:
    """The upload families of a child's registry, as plain data for the main process."""
    return [
        (
            family.name,
            family.documentation,
            family.type,
            [(s.name, dict(s.labels), s.value) for s in family.samples],
        )
        for family in metrics.registry.collect()
        if family.name in UPLOAD_FAMILIES
    ]


class MergedCollector:
    """The children's upload metrics summed (gauges: the largest) at scrape time."""

    def __init__(self) -> None:
        self.latest: dict[int, Snapshot] = {}
        self._lock = threading.Lock()

    def update(self, index: int, data: Snapshot) -> None:
        with self._lock:
            self.latest[index] = data

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            children = list(self.latest.values())
        families: dict[str, tuple[str, str, dict[tuple[str, tuple[Any, ...]], float]]] = {}
        for data in children:
            for name, doc, kind, samples in data:
                _, _, values = families.setdefault(name, (doc, kind, {}))
                for sample, labels, value in samples:
                    if sample.endswith("_created"):
                        continue
                    key = (sample, tuple(sorted(labels.items())))
                    old = values.get(key)
                    if old is None:
                        values[key] = value
                    else:
                        values[key] = max(old, value) if kind == "gauge" else old + value
        for name, (doc, kind, values) in families.items():
            family = Metric(name, doc, kind)
            for (sample, pairs), value in values.items():
                family.add_sample(sample, dict(pairs), value)
            yield family


# ---------------------------------------------------------------- the parent


@dataclass(eq=False)  # compared by identity
class _Child:
    index: int
    process: SpawnProcess
    send: Sender  # to it (if it is gone, its files come back when it is revived)
    results: Connection  # from it
    files: dict[Path, Item] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    gone: bool = False  # seen dead (then replaced, unless the pool gave up or is closing)

    def close(self) -> None:
        self.send.close()
        self.results.close()


class WorkersFailedError(DropscribeError):
    """Worker processes die as soon as they start: the daemon stops rather than spin."""


class ProcessPool:
    """The thread Pool's interface over worker processes."""

    def __init__(
        self,
        config: Config,
        *,
        once: bool,
        log_level: str,
        metrics: Metrics,
        on_done: Callable[[Item], None],
        on_lost: Callable[[Item], None],
    ) -> None:
        self._config = config
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
        self._children = [self._spawn(index) for index in range(self._config.processes)]
        self._reader.start()

    def _spawn(self, index: int) -> _Child:
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

    def submit(self, item: Item) -> bool:
        """Hand a file to the least busy process; False when in flight or all are full."""
        with self._lock:
            living = [c for c in self._children if not c.gone]
            if self._closed or not living or item.path in self._where:
                return False
            child = min(living, key=lambda c: len(c.files))
            if len(child.files) >= self._threads * 2:
                return False
            child.files[item.path] = item
            self._where[item.path] = child
        child.send(("file", str(item.path), item.inbox.name))
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
        with self._lock:
            self._config = replace(config, workers=self._config.workers,
                                   processes=self._config.processes)  # fmt: skip
            children = [c for c in self._children if not c.gone]
        for child in children:
            child.send(("config", self._config))

    def close(self, grace: float) -> int:
        """Stop every process: files not started are dropped, running ones get ``grace``
        seconds (plus a little to report); returns how many were still running."""
        with self._lock:
            self._closed = True
            children = [c for c in self._children if not c.gone]
        for child in children:
            child.send(None)
        deadline = time.monotonic() + grace + 5.0
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
        """Take what the children report; start again those that die."""
        while True:
            with self._lock:
                children = [c for c in self._children if not c.gone]
            sources: dict[Any, _Child] = {c.results: c for c in children}
            ready = wait([self._wake_reader, *sources, *(c.process.sentinel for c in children)])
            for conn in ready:
                child = sources.get(conn)
                if child is not None:
                    self._receive(child)
            if self._wake_reader in ready:
                return
            if any(isinstance(r, int) for r in ready):
                self._revive()

    def _receive(self, child: _Child) -> None:
        """Every message waiting from one child (a dead one's last words included)."""
        try:
            while child.results.poll():
                message = receive(child.results)
                if message[0] == "done":
                    self._done(message[1], Path(message[2]), message[3])
                elif message[0] == "metrics":
                    self._merged.update(message[1], message[2])
        except (EOFError, OSError):
            return  # gone: its sentinel says so, and it is revived

    def _done(self, index: int, path: Path, outcome: str | None) -> None:
        with self._lock:
            child = self._where.get(path)
            if child is None or child.index != index:
                return
            del self._where[path]
            item = child.files.pop(path)
        if outcome is not None:
            self.tally.add(outcome)
            self._metrics.outcomes.labels(outcome).inc()
        self._on_done(item)

    def _revive(self) -> None:
        """Start a process that died again; its files go back to be settled."""
        with self._lock:
            dead = [c for c in self._children if not c.gone and not c.process.is_alive()]
        for child in dead:
            self._receive(child)  # what it finished before it died is not lost
        lost: list[Item] = []
        with self._lock:
            for child in dead:
                child.gone = True  # seen to: no longer waited on (a successor may follow)
                child.close()
                if self._closed:
                    continue  # stopping: its unstarted files are dropped with the rest
                quick = time.monotonic() - child.started < QUICK_DEATH
                self._quick_deaths = self._quick_deaths + 1 if quick else 0
                code = child.process.exitcode
                lost += child.files.values()
                for path in child.files:
                    self._where.pop(path, None)
                if self._quick_deaths >= QUICK_DEATHS:
                    self.failure = (
                        f"worker processes die as they start ({QUICK_DEATHS} in a row,"
                        f" last exit code {code}); see the events before this one"
                    )
                    log.error("worker.died", worker=child.index, exitcode=code,
                              files=len(child.files), action="giving up")  # fmt: skip
                    continue
                log.error("worker.died", worker=child.index, exitcode=code,
                          files=len(child.files), action="started again")  # fmt: skip
                self._children[self._children.index(child)] = self._spawn(child.index)
        for item in lost:
            self._on_lost(item)

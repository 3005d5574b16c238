"""What runs in a worker process (``processes: N``): the usual worker host (``host``)
behind a pipe, plus what it shares with its siblings (the job-key locks) and what it tells
the main process (each file's outcome, and its upload metrics every two seconds).

It ignores SIGTERM, SIGINT and SIGHUP (blocked from its first instruction, as the main
process starts it with them blocked): the main process tells it to stop or to reload, and
when the main process is gone it stops at its next read.
"""

from __future__ import annotations

import contextlib
import faulthandler
import fcntl
import math
import os
import pickle
import signal
import struct
import sys
import threading
import time
import zlib
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from dropscribe.dispatch.host import Threads
from dropscribe.ledger.opening import follow_reload, open_ledger
from dropscribe.ops import log as logmod
from dropscribe.ops.metrics import UPLOAD_FAMILIES, Metrics

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from multiprocessing.connection import Connection
    from pathlib import Path

    from dropscribe.jobs.job import Outcome, SettledFile
    from dropscribe.vocab.config import Config
    from dropscribe.vocab.states import JobKey

METRICS_SECONDS = 2.0  # how often a worker process sends its upload metrics


# What goes over the pipes. To a child: Take, Reconfigure, Stopping and Stop.


class Take(NamedTuple):
    """Transcribe this settled file (with its inbox: the child need not look it up)."""

    file: SettledFile


class Reconfigure(NamedTuple):
    """The config was reloaded: use its endpoints from now on."""

    config: Config


class Stopping(NamedTuple):
    """pool20: a stop was asked, told to every child at once (the main process's stop may
    wait a while to close the pool: its loop in a statement, say): from now on no job and
    no upload starts, as in the main process's own workers; what runs goes on until
    ``Stop`` says how long it has."""


class Stop(NamedTuple):
    """The daemon stops: jobs in flight get until ``ends`` (monotonic: one clock for every
    process of the machine), the main process's grace, counted from when the stop was
    asked (pgstop19), not from when this message came."""

    ends: float


# From a child: Finished and Figures.


class Finished(NamedTuple):
    """Child number ``child`` is finished with ``path`` (outcome None: it never ran, as
    the child is stopping); ``until``: when the file, waiting, is tried again (wake15)."""

    child: int
    path: str
    outcome: Outcome | None
    until: float | None = None


class Figures(NamedTuple):
    """Child number ``child``'s upload metrics as they stand."""

    child: int
    metrics: Snapshot


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
    def __call__(self, key: JobKey) -> Iterator[None]:
        # crc32 is the same in every process; two jobs share a byte once in 4 billion
        offset = zlib.crc32(str(key).encode())
        fd = os.open(self._path, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.fcntl(
                fd, fcntl.F_OFD_SETLKW, self._FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
            )
            yield
        finally:
            os.close(fd)  # releases the lock


def serve(
    index: int,
    config: Config,
    once: bool,
    log_level: str,
    tasks: Connection,
    results: Connection,
) -> None:
    """A worker process: take files from ``tasks`` until ``Stop`` (or the main process is
    gone), report on ``results``."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # one pending since the start: discarded
    # long18: blocked since the fork (``processes.SHIELDED``): ignored, they may come
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # as the main process
    logmod.configure(config.log_format, log_level, final=True)
    _hide(config)
    threads = math.ceil(config.workers / config.processes)
    # migrated by the main process: opened with no write, so it starts while another
    # process holds the ledger (grace18; else it waited 30 s, and died)
    ledger = open_ledger(config, pool_size=threads, reading=True, migrated=True)
    abort = threading.Event()
    metrics = Metrics()
    put = Sender(results)

    def report(file: SettledFile, outcome: Outcome | None) -> None:
        put(Finished(index, str(file.path), outcome, file.until))

    host = Threads(
        config,
        ledger,
        abort,
        once=once,
        metrics=metrics,
        threads=threads,
        processes=config.processes,
        queue_size=threads * 4,
        key_lock=FileKeyLocks(config.state_dir / "keys.lock"),
        report=report,
    )
    host.start()
    stopped = threading.Event()
    reporter = threading.Thread(
        target=_report_metrics, args=(index, metrics, put, stopped), name="dropscribe-metrics"
    )
    reporter.start()
    ends: float | None = None  # the main process's, or from now if it is gone
    closed = False  # every job ended, the ledger closed
    try:
        ends = _take(index, tasks, put, host, lambda new: follow_reload(ledger, new), abort)
    finally:
        if ends is None:
            ends = time.monotonic() + config.shutdown_grace
        ledger.give_up_at(ends)  # grace18: then no write waits for a ledger held elsewhere
        abort.set()
        stopped.set()
        reporter.join()
        if not host.close(max(0.0, ends - time.monotonic())):
            ledger.close()
            closed = True
        put(Figures(index, snapshot(metrics)))
    if closed:
        _leave()


def _take(
    index: int,
    tasks: Connection,
    put: Sender,
    host: Threads,
    reloaded: Callable[[Config], None],
    abort: threading.Event,
) -> float | None:
    """What the main process sends, until it says ``Stop``: its grace's end (None: the
    main process is gone)."""
    while True:
        try:
            message = receive(tasks)
        except (EOFError, OSError):
            return None
        match message:
            case Stop(ends=ends):
                return ends
            case Stopping():
                abort.set()  # waits give up, nothing starts (``Threads``: ``halted``)
            case Take(file):
                if not host.submit(file):
                    put(Finished(index, str(file.path), None))
            case Reconfigure(config=new):
                _hide(new)  # pool20: as the main process's reload does, before any use
                host.reload(new)
                reloaded(new)


def _hide(config: Config) -> None:
    """The config's secrets blanked in this process's event lines (its keys, the ledger's
    password): loading does it in the main process, a config sent over the pipe is not
    loaded here (a key a reload brought was printed in clear where a hook printed it)."""
    logmod.hide(*(endpoint.api_key for endpoint in config.endpoints.values()))
    logmod.hide(config.ledger.password if config.ledger else None)


def _leave() -> NoReturn:
    """Every job ended and reported, the ledger closed: out without the interpreter's
    teardown (flakes19). Its modules' and objects' teardown took over a second on a busy
    machine, past the ``STOP_MARGIN`` the main process gives a worker to end: it killed
    the worker at every stop, and said the files queued there were abandoned by a grace
    that ran out (``daemon.abandoned``). A worker with jobs still running returns as
    before: the main process kills it when the margin is over."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _report_metrics(index: int, metrics: Metrics, put: Sender, stopped: threading.Event) -> None:
    while not stopped.wait(METRICS_SECONDS):
        put(Figures(index, snapshot(metrics)))


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

    def __call__(
        self, message: Take | Reconfigure | Stopping | Stop | Finished | Figures | None
    ) -> None:
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

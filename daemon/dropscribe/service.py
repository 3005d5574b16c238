"""Wires it all together: watcher -> settle -> ledger -> pool -> job -> sidecars -> ledger.

The main loop owns the settle tracker. It takes hints from the watchers and the
scans, stats the files it tracks, and hands settled ones to the pool. It never
waits on a worker and a worker never waits on it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

import structlog

from dropscribe.config import rules
from dropscribe.dispatch.pool import Pool
from dropscribe.dispatch.processes import ProcessPool
from dropscribe.errors import LedgerUnavailable, SetupError, WorkersFailedError
from dropscribe.ingest import source
from dropscribe.ingest.settle import SettleTracker, Stat
from dropscribe.ingest.watcher import Hint, Watcher, scan
from dropscribe.jobs.job import Item, Tally
from dropscribe.jobs.runner import JobRunner
from dropscribe.ledger import opening, statedir
from dropscribe.loading import reloading
from dropscribe.ops import descriptors
from dropscribe.ops import log as logmod
from dropscribe.ops.metrics import Metrics, MetricsServer
from dropscribe.ops.notify import Notifier
from dropscribe.outputs.sidecar import is_temp
from dropscribe.transcribe import lookout
from dropscribe.transcribe.engines import make_client

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import httpx

    from dropscribe.ledger.interface import Ledger
    from dropscribe.transcribe.radar import Retiring
    from dropscribe.vocab.config import Config, Inbox
    from dropscribe.vocab.settings import FolderSettings

log = structlog.get_logger("dropscribe")

Workers = Pool[Item] | ProcessPool  # threads in this process, or worker processes

TICK = 0.2  # longest the loop sleeps: how soon it notices a stop request
BURST = 10_000  # hints taken in a row; then files are looked at, even if more keep coming
HEALTH_SECONDS = 5.0  # how often dead watch threads and a lost state_dir are looked for
STATUS_SECONDS = 5.0  # how often systemd hears the queue counts (more often with WatchdogSec)


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._clock = clock
        self._wall = wall
        self._transport = transport
        self._hints: queue.SimpleQueue[Hint | None] = queue.SimpleQueue()  # None: wake up
        self._tracker = SettleTracker()
        self._ready: OrderedDict[Path, Item] = OrderedDict()  # settled, waiting for room
        self._dirty: set[Path] = set()  # touched while in flight: look again afterwards
        self._ignored: OrderedDict[Path, None] = OrderedDict()  # logged recently
        self._ledger: Ledger | None = None
        self._notify = Notifier()
        self.metrics: Metrics  # a fresh registry per run(), made there
        self._progress: Callable[[int, int, int], None] | None = None
        self.tally: Tally | None = None
        self.abandoned = 0  # jobs still running when the grace ran out (see run)
        self._shown = (0, 0, 0)
        self._excluded = rules.excluded_dirs(config)
        self._rescan_soon = threading.Event()  # set from another thread: scan at next turn
        self._look_soon = threading.Event()  # a watch thread: look at the watches next turn
        self.log_level: str | None = None  # what worker processes log at (default: config)

    # ------------------------------------------------------------ entry points

    def run(
        self,
        stop: threading.Event,
        *,
        once: bool = False,
        reload: Callable[[], bool] | None = None,
        progress: Callable[[int, int, int], None] | None = None,
    ) -> int:
        """Serve until ``stop`` is set (or, with ``once``, until the inboxes are empty).
        When ``reload()`` says so (SIGHUP) the config file is re-read; ``progress`` is called
        with (finished, total, failed) whenever those change. Returns how many files failed."""
        self._progress = progress
        descriptors.raise_limit()  # what outsiders may take is bounded apart (metrics)
        lock, ledger = statedir.open_state(self.config)
        self._ledger, self._lock = ledger, lock  # the lock: held until run() ends
        # Scratch audio a crash left behind (ours alone: we hold the state_dir lock).
        shutil.rmtree(self.config.state_dir / "work", ignore_errors=True)
        abort = threading.Event()
        metrics = self.metrics = Metrics(uploads=self.config.processes == 1)
        metrics.watch_ledger(ledger.counts)
        if isinstance(ledger, opening.Announcing):
            ledger.on_available = self._rescan_soon.set  # what waited comes at once
        pool, runner, tally = self._workers(ledger, abort, metrics, once=once)
        self.tally = tally
        server = None if once else self._serve_metrics(metrics)
        watcher = self._watcher(self.config)
        looking = lookout.Radar(ledger, self._now, found=self._retiring)
        pool.start()
        try:
            if not once:
                watcher.start()
            self._scan_all()
            log.info(
                "daemon.started",
                inboxes=len(self.config.inboxes),
                workers=self.config.workers,
                processes=self.config.processes,
                once=once,
                state_dir=str(self.config.state_dir),
                ledger=ledger.where,
            )
            self._notify(READY="1", STATUS=self._status(pool))
            if not once:  # once sends nothing but its files
                looking.start()
            watcher = self._loop(stop, pool, watcher, runner, once, reload)
        finally:
            looking.close()  # before the ledger is
            self._notify(STOPPING="1", STATUS="finishing uploads in flight")
            if server is not None:
                server.stop()
            log.info("daemon.stopping", grace_seconds=self.config.shutdown_grace)
            watcher.stop()
            abort.set()  # waits (backoff, paused endpoints) give up; uploads in flight go on
            stragglers = pool.close(self.config.shutdown_grace)
            self.abandoned = stragglers
            if stragglers:
                log.warning(
                    "daemon.abandoned",
                    running=stragglers,
                    reason="grace period over; they run again at next start",
                )
            else:
                for client in runner.clients() if runner else []:
                    client.close()
                ledger.close()
            os.close(lock)
            if self._progress is not None:
                self._progress(tally.finished, tally.finished, tally.failed)
            log.info("daemon.stopped", done=tally.done, failed=tally.failed, skipped=tally.skipped)
        return tally.failed

    def _serve_metrics(self, metrics: Metrics) -> MetricsServer | None:
        """/metrics and /healthz, where the config asks for them."""
        if self.config.metrics is None:
            return None
        server = MetricsServer(metrics, *self.config.metrics)
        server.start()
        host, port = server.address[:2]
        log.info("metrics.listening", url=f"http://{host!s}:{port}/metrics")
        return server

    def _retiring(self, found: Retiring) -> None:
        self.metrics.retiring(found)

    def _now(self) -> Config:
        """The config as last reloaded."""
        return self.config

    def _workers(
        self, ledger: Ledger, abort: threading.Event, metrics: Metrics, *, once: bool
    ) -> tuple[Workers, JobRunner | None, Tally]:
        """Worker processes when configured, else threads sharing one JobRunner."""
        if self.config.processes > 1:
            pool = ProcessPool(
                self.config,
                once=once,
                log_level=self.log_level or self.config.log_level,
                metrics=metrics,
                on_done=self._finished,
                on_lost=self._lost,
            )
            return pool, None, pool.tally
        endpoints = self.config.endpoints.items()
        clients = {name: make_client(ep, self._transport, abort) for name, ep in endpoints}
        runner = JobRunner(
            ledger,
            clients,
            abort,
            work=self.config.state_dir / "work",
            once=once,
            inbox_of=self._inbox_of,
            metrics=metrics,
        )
        threads: Pool[Item] = Pool(
            self.config.workers, runner, key=lambda item: item.path, on_done=self._finished
        )
        return threads, runner, runner.tally

    # ------------------------------------------------------------ the loop

    def _gauges(self, pool: Workers) -> None:
        queued, running = pool.counts()
        if self._progress is not None and self.tally is not None:
            finished = self.tally.finished
            shown = (
                finished,
                finished + queued + running + len(self._ready) + len(self._tracker),
                self.tally.failed,
            )
            if shown != self._shown:
                self._shown = shown
                self._progress(*shown)
        self.metrics.alive()
        self.metrics.queue.set(queued + len(self._ready))
        self.metrics.running.set(running)
        self.metrics.settling.set(len(self._tracker))

    def _status(self, pool: Workers) -> str:
        queued, running = pool.counts()
        return (
            f"{running} transcribing, {queued + len(self._ready)} queued, "
            f"{len(self._tracker)} settling"
        )

    def _lost(self, item: Item) -> None:
        """A worker process died with this file: settle it again."""
        self._hints.put(Hint(item.path))

    def _loop(
        self,
        stop: threading.Event,
        pool: Workers,
        watcher: Watcher,
        runner: JobRunner | None,
        once: bool,
        reload: Callable[[], bool] | None,
    ) -> Watcher:
        """The main loop; returns the watcher in use at the end (a reload replaces it)."""
        next_rescan = self._clock() + self.config.rescan_seconds
        next_health = self._clock() + HEALTH_SECONDS
        next_beat = self._clock()
        beat = min(self._notify.watchdog_interval or STATUS_SECONDS, STATUS_SECONDS)
        while not stop.is_set():
            if isinstance(pool, ProcessPool) and pool.failure:
                raise WorkersFailedError(pool.failure)
            self._gauges(pool)
            if self._clock() >= next_beat:  # the loop is alive: tell systemd, with counts
                self._notify(WATCHDOG="1", STATUS=self._status(pool))
                next_beat = self._clock() + beat
            if reload is not None and reload():
                self._notify(RELOADING="1", STATUS="reloading the config")
                watcher = self._reload(watcher, pool, runner)
                self._notify(READY="1", STATUS=self._status(pool))
            now = self._clock()
            deadline = self._tracker.next_deadline(now)
            timeout = TICK if deadline is None else min(TICK, deadline)
            with contextlib.suppress(queue.Empty):
                self._take(self._hints.get(timeout=timeout), pool)
                for _ in range(BURST):  # drain a burst without sleeping in between
                    self._take(self._hints.get_nowait(), pool)
            self._settle(self._clock())
            self._dispatch(pool)
            if once and not self._tracker and not self._ready and pool.idle():
                return watcher
            if not once and (self._clock() >= next_rescan or self._rescan_soon.is_set()):
                self._rescan_soon.clear()
                self._scan_all()
                next_rescan = self._clock() + self.config.rescan_seconds
            if not once and (self._clock() >= next_health or self._look_soon.is_set()):
                self._look_soon.clear()
                statedir.check(self.config.state_dir, self._lock)
                for inbox in watcher.revive():
                    self._scan(inbox)
                next_health = self._clock() + HEALTH_SECONDS
        return watcher

    def _reload(self, watcher: Watcher, pool: Workers, runner: JobRunner | None) -> Watcher:
        """Apply a changed config file; a broken one is reported and the running one kept.

        Queued and in-flight work is not dropped: files already handed to the pool run
        with the settings of their inbox as it is now (or as it was, if it was removed).
        """
        old = self.config
        new = reloading.reread(old)
        if new is None:
            return watcher
        watching = self._watcher(new)
        try:  # before anything changes: an inbox that cannot be watched refuses the reload
            watching.start()
        except SetupError as exc:
            log.error("config.reload_failed", problems=[str(exc)], action="kept the running config")
            return watcher
        if isinstance(pool, ProcessPool):
            pool.reload(new)
        elif runner is not None:
            runner.update_endpoints(old.endpoints, new.endpoints, self._transport)
        watcher.stop()  # the two overlapped: a file heard twice is one hint too many, no more
        watcher = watching
        self.config = new
        if self._ledger is not None:
            opening.follow_reload(self._ledger, new)
        self._excluded = rules.excluded_dirs(new)
        before = {inbox.path for inbox in old.inboxes}
        after = {inbox.path for inbox in new.inboxes}
        self._scan_all()
        log.info(
            "config.reloaded",
            inboxes=len(new.inboxes),
            added=sorted(str(p) for p in after - before),
            removed=sorted(str(p) for p in before - after),
        )
        return watcher

    def _watcher(self, config: Config) -> Watcher:
        return Watcher(
            config.inboxes,
            self._hints.put,
            on_change=self.metrics.inboxes,
            on_limit=self._look_soon.set,
        )

    def _scan_all(self) -> None:
        for inbox in self.config.inboxes:
            self._scan(inbox)

    def _scan(self, inbox: Inbox) -> None:
        now = self._wall()
        for path in scan(inbox.path, inbox.recursive):
            self._hint_file(inbox, path, scanned_at=now)

    def _finished(self, item: Item) -> None:
        """A worker is free: wake the loop to hand it the next settled file."""
        if item.path in self._dirty:
            self._dirty.discard(item.path)
            self._hints.put(Hint(item.path))
        else:
            self._hints.put(None)

    def _inbox_of(self, path: Path) -> Inbox | None:
        return rules.inbox_of(self.config, path)

    def _take(self, hint: Hint | None, pool: Workers) -> None:
        if hint is None:
            return
        path, is_dir, gone, heard_at = hint
        inbox = self._inbox_of(path)
        if inbox is None:
            return
        if gone:
            self._tracker.forget(path)
            self._ready.pop(path, None)
            return
        if is_dir:
            if rules.ignore_reason(inbox, path / "x", self._excluded) in {None, "not included"}:
                now = self._wall()
                for found in scan(path, inbox.recursive):
                    self._hint_file(inbox, found, scanned_at=now)
            return
        if pool.in_flight(path):
            self._dirty.add(path)
            return
        self._hint_file(inbox, path, scanned_at=None, heard_at=heard_at)

    def _hint_file(
        self, inbox: Inbox, path: Path, scanned_at: float | None, heard_at: float | None = None
    ) -> None:
        """Start (or restart) the quiet period of a candidate file.

        ``scanned_at`` is the wall clock when the hint comes from a scan, ``heard_at``
        when a native watch heard of it: a file whose mtime is older than its settle
        time has been quiet that long already (a finished recording moved in, as sync
        tools do, goes at once; one being written has an mtime of now and waits).
        """
        if path in self._ready:
            return
        reason = rules.ignore_reason(inbox, path, self._excluded)
        if reason is not None:
            self._note_ignored(path, inbox, reason)
            return
        settings = rules.effective(inbox, path)
        now = self._clock()
        if scanned_at is not None and path in self._tracker:
            return
        try:
            st = path.stat()
        except OSError:
            return
        if self._settled_before(path, st, settings):
            return
        seen = scanned_at if scanned_at is not None else heard_at
        if seen is not None:
            now -= min(max(0.0, seen - st.st_mtime), settings.settle_seconds)
        stat = Stat(st.st_size, st.st_mtime_ns)
        if self._tracker.touch(path, stat, now, settings.settle_seconds):
            log.info("file.detected", path=str(path), inbox=inbox.name, bytes=st.st_size)

    def _settled_before(self, path: Path, st: os.stat_result, settings: FolderSettings) -> bool:
        """The ledger already has the final word on this very file (same size, mtime, inode).
        A shared ledger that cannot be asked: not now (all is scanned again once it is back)."""
        try:
            row = self._ledger.file(path) if self._ledger else None
        except LedgerUnavailable:
            return True
        return rules.settled_before(row, settings, identity=source.identity(st)) is not None

    def _note_ignored(self, path: Path, inbox: Inbox, reason: str) -> None:
        if path in self._ignored or is_temp(path):
            return
        self._ignored[path] = None
        if len(self._ignored) > 10_000:
            self._ignored.popitem(last=False)
        if reason in {"not included", "dropscribe output", "hidden"}:  # every sidecar, ...
            if logmod.debugging():
                log.debug("file.ignored", path=str(path), inbox=inbox.name, reason=reason)
            return
        log.info("file.ignored", path=str(path), inbox=inbox.name, reason=reason)

    def _settle(self, now: float) -> None:
        for path in self._tracker.due(now):
            try:
                st = path.stat()
            except OSError:
                stat = None
            else:
                stat = Stat(st.st_size, st.st_mtime_ns)
            if self._tracker.observe(path, stat, now):
                inbox = self._inbox_of(path)
                if inbox is None:
                    continue
                log.info("file.settled", path=str(path), inbox=inbox.name, bytes=st.st_size)
                self._ready[path] = Item(inbox, path)

    def _dispatch(self, pool: Workers) -> None:
        while self._ready:
            path, item = next(iter(self._ready.items()))
            if pool.in_flight(path):
                self._ready.pop(path)
                self._dirty.add(path)
                continue
            if not pool.submit(item):
                return  # full: keep it for the next turn
            self._ready.pop(path)

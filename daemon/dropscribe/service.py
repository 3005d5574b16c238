"""Wires it all together: watcher -> settle -> ledger -> pool -> job -> sidecars -> ledger.

The main loop owns the intake (``intake``: hints from the watchers and the scans
become settled files) and hands settled files to the workers; it reloads the config
when told to. It never waits on a worker and a worker never waits on it.
"""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
from typing import TYPE_CHECKING

import structlog

from dropscribe.dispatch.host import Threads
from dropscribe.dispatch.processes import ProcessPool
from dropscribe.errors import SetupError, WorkersFailedError
from dropscribe.ingest.watcher import Watcher
from dropscribe.intake import Intake
from dropscribe.ledger import opening, statedir
from dropscribe.loading import reloading
from dropscribe.ops import descriptors
from dropscribe.ops.metrics import Metrics, MetricsServer
from dropscribe.ops.notify import Notifier
from dropscribe.steps.stepper import Stepper
from dropscribe.stopclock import StopClock
from dropscribe.transcribe import lookout
from dropscribe.vocab.config import KEPT, STOP_MARGIN

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from dropscribe.jobs.job import SettledFile, Tally
    from dropscribe.ledger.interface import Ledger
    from dropscribe.transcribe.radar import Retiring
    from dropscribe.vocab.config import Config

log = structlog.get_logger("dropscribe")

Workers = Threads | ProcessPool  # threads in this process, or worker processes

TICK = 0.2  # longest the loop sleeps: how soon it notices a stop request
SLICE = 0.1  # scan21: longest a turn of the loop walks the scans asked for
READY_WAIT = 1.0  # ready22: longest READY=1 waits for the watches and the first scan
HEALTH_SECONDS = 5.0  # how often dead watch threads and a lost state_dir are looked for
RADAR_JOIN = 2.0  # longest the stop waits for the radar's thread (a look in flight)
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
        self._intake: Intake  # hints -> settled files: made in run(), with the ledger
        self._ledger: Ledger | None = None
        self._stepper: Stepper  # the steps after the transcript (chat33): made in run()
        self._notify = Notifier()
        self.metrics: Metrics  # a fresh registry per run(), made there
        self._progress: Callable[[int, int, int], None] | None = None
        self.tally: Tally | None = None
        self.abandoned = 0  # jobs still running when the grace ran out (see run)
        self._shown = (0, 0, 0)
        self._rescan_soon = threading.Event()  # set from another thread: scan at next turn
        self._look_soon = threading.Event()  # a watch thread: look at the watches next turn
        self._said_started = False  # daemon.started said (and READY=1: serving)
        self._ready_by = math.inf  # when READY=1 is said, the first scan through or not
        self._fulls = 0  # full scans done, as systemd's STATUS= last told
        self._watches: Watcher | None = None  # the one in use (its adding, for STATUS=)
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
        self._progress, self._said_started, self._ready_by = progress, False, math.inf
        descriptors.raise_limit()  # what outsiders may take is bounded apart (metrics)
        lock, ledger = statedir.open_state(self.config)
        self._ledger, self._lock = ledger, lock  # the lock: held until run() ends
        self._intake = Intake(
            self._now, ledger, clock=self._clock, wall=self._wall, honour_waits=not once
        )
        # Scratch audio a crash left behind (ours alone: we hold the state_dir lock).
        shutil.rmtree(self.config.state_dir / "work", ignore_errors=True)
        abort = threading.Event()
        metrics = self.metrics = Metrics(uploads=self.config.processes == 1)
        metrics.watch_ledger(ledger.counts)
        metrics.watch_spend(ledger.spend_totals)  # budget34
        if isinstance(ledger, opening.Announcing):
            ledger.on_available = self._rescan_soon.set  # what waited comes at once
        pool = self._workers(ledger, abort, metrics, once=once, stopping=stop.is_set)
        tally = self.tally = pool.tally
        server = None if once else self._serve_metrics(metrics)
        watcher = self._watcher(self.config)
        looking = lookout.Radar(ledger, self._now, found=self._retiring)
        stepper = self._stepper = Stepper(
            ledger, self._now, transport=self._transport, metrics=metrics
        )  # chat33, steps33b
        pool.start()
        clock = StopClock(
            stop, ledger.give_up_at, lambda: self.config.shutdown_grace, abort.set, TICK
        )
        try:
            if not once:
                self._begin(watcher, stop)
            # scan21: walked by the loop, in slices, once the watches are added; ready22:
            # the daemon serves once the first slice is walked (a small inbox: all of it)
            self._intake.walks.every(self.config.inboxes)
            self._intake.scan_some(self._clock() + SLICE)
            self._started(pool, once)
            if not once:  # once sends nothing but its files
                looking.start()
                stepper.start()
            watcher = self._loop(stop, pool, watcher, once, reload)
        finally:
            # grace18: one grace for the whole stop, then no write waits for a ledger held
            # elsewhere (what it would have written is done at the next start); counted
            # from the moment the stop was asked (pgstop19)
            ends = clock.ends(self.config.shutdown_grace)
            ledger.give_up_at(ends)
            abort.set()  # waits (backoff, paused endpoints, a slot) give up; in flight go on
            watcher.stopping()  # watchstop20: meanwhile (a polled snapshot gives up)
            stepper.stop()
            self._notify(STOPPING="1", STATUS="finishing uploads in flight")
            if server is not None:
                server.stop()
            log.info("daemon.stopping", grace_seconds=self.config.shutdown_grace)
            self._wind_down(pool, ledger, looking, ends)
            watcher.stopped(ends + KEPT)  # watchstop20: a look that hangs is left behind
            os.close(lock)
            if self._progress is not None:
                self._progress(tally.finished, tally.finished, tally.failed)
            log.info("daemon.stopped", done=tally.done, failed=tally.failed, skipped=tally.skipped)
        return tally.failed

    def _begin(self, watcher: Watcher, stop: threading.Event) -> None:
        """ready22: the watches added on a thread of their own, waited for ``READY_WAIT`` at
        most (a small inbox's: before its scan, and before READY=1, as they always were)."""
        self._watching(watcher).begin()
        self._ready_by = self._clock() + READY_WAIT
        while not stop.is_set() and not watcher.added(TICK) and self._clock() < self._ready_by:
            pass

    def _wind_down(self, pool: Workers, ledger: Ledger, radar: lookout.Radar, ends: float) -> None:
        """Jobs, steps and the radar given until ``ends`` (monotonic: the grace over), and a
        look in flight ``STOP_MARGIN`` more; the ledger closed unless jobs still run."""
        stragglers = self.abandoned = pool.close(max(0.0, ends - time.monotonic()))
        self._stepper.close(ends)
        # before the ledger is
        radar.close(min(RADAR_JOIN, max(0.0, ends + STOP_MARGIN - time.monotonic())))
        if stragglers:
            log.warning(
                "daemon.abandoned",
                running=stragglers,
                reason="grace period over; they run again at next start",
            )
        else:
            ledger.close()

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
        self,
        ledger: Ledger,
        abort: threading.Event,
        metrics: Metrics,
        *,
        once: bool,
        stopping: Callable[[], bool],
    ) -> Workers:
        """Worker processes when configured, else worker threads in this process."""
        _check_proxies(self.config)
        if self.config.processes > 1:
            return ProcessPool(
                self.config,
                once=once,
                log_level=self.log_level or self.config.log_level,
                metrics=metrics,
                on_done=self._finished,
                on_lost=self._intake.lost,
                stopping=stopping,
            )
        return Threads(
            self.config,
            ledger,
            abort,
            once=once,
            metrics=metrics,
            threads=self.config.workers,
            transport=self._transport,
            on_done=self._finished,
        )

    def _finished(self, item: SettledFile) -> None:
        """A worker is free; its file's steps are looked at now (stepclaims33)."""
        self._intake.finished(item)
        self._stepper.finished(item.path)

    # ------------------------------------------------------------ the loop

    def _gauges(self, pool: Workers) -> None:
        queued, running = pool.counts()
        ready, settling = self._intake.waiting()
        if self._progress is not None and self.tally is not None:
            finished = self.tally.finished
            shown = (finished, finished + queued + running + ready + settling, self.tally.failed)
            if shown != self._shown:
                self._shown = shown
                self._progress(*shown)
        self.metrics.alive()
        self.metrics.queue.set(queued + ready)
        self.metrics.running.set(running)
        self.metrics.settling.set(settling)

    def _status(self, pool: Workers) -> str:
        """What systemd shows: the watches being added, a full scan under way or the
        inboxes watched (ready22: when the first scan is through), and the queue."""
        queued, running = pool.counts()
        ready, settling = self._intake.waiting()
        found = self._intake.walks.scanning()
        if self._watches is not None and self._watches.adding():
            lead = "adding the watches"
        elif found is not None:
            lead = f"scanning: {found} files so far"
        else:
            count = len(self.config.inboxes)
            lead = f"watching {count} inbox{'es' if count != 1 else ''}"
        return f"{lead}; {running} transcribing, {queued + ready} queued, {settling} settling"

    def _loop(
        self,
        stop: threading.Event,
        pool: Workers,
        watcher: Watcher,
        once: bool,
        reload: Callable[[], bool] | None,
    ) -> Watcher:
        """The main loop; returns the watcher in use at the end (a reload replaces it)."""
        next_rescan = self._clock() + self.config.rescan_seconds
        next_health = self._clock() + HEALTH_SECONDS
        next_beat = self._clock()
        beat = min(self._notify.watchdog_interval or STATUS_SECONDS, STATUS_SECONDS)
        while not stop.is_set():
            if pool.failure:
                raise WorkersFailedError(pool.failure)
            self._gauges(pool)
            if self._clock() >= next_beat:  # the loop is alive: tell systemd, with counts
                self._notify(WATCHDOG="1", STATUS=self._status(pool))
                next_beat = self._clock() + beat
            if reload is not None and reload():
                self._notify(RELOADING="1", STATUS="reloading the config")
                watcher = self._reload(watcher, pool)
                self._notify(READY="1", STATUS=self._status(pool))
            self._intake.take(pool, TICK)
            self._intake.settle(self._clock())
            self._intake.dispatch(pool)
            self._intake.scan_some(self._clock() + SLICE)
            self._started(pool, once)
            if self._fulls != self._intake.walks.fulls:  # a full scan through: said at once
                self._fulls, next_beat = self._intake.walks.fulls, self._clock()
            if once and self._intake.empty() and pool.idle():
                self._stepper.run_once(stop)  # steps33b: once leaves the steps' files too
                return watcher
            if not once and (self._clock() >= next_rescan or self._rescan_soon.is_set()):
                self._rescan_soon.clear()
                self._intake.walks.every(self.config.inboxes)
                next_rescan = self._clock() + self.config.rescan_seconds
            if not once and (self._clock() >= next_health or self._look_soon.is_set()):
                self._look_soon.clear()
                statedir.check(self.config.state_dir, self._lock)
                for inbox in watcher.revive():
                    self._intake.walks.inbox(inbox)
                next_health = self._clock() + HEALTH_SECONDS
        return watcher

    def _started(self, pool: Workers, once: bool) -> None:
        """Serving: said, and READY=1 told to systemd, once the first full scan is through,
        or ``READY_WAIT`` after the watches began to be added (ready22: the watches being
        added, the scan going on; a huge inbox's first scan passed systemd's
        TimeoutStartSec, and the unit was killed at each start). ``once``: its scan done."""
        if self._said_started or (not self._intake.walks.fulls and self._clock() < self._ready_by):
            return
        self._said_started = True
        log.info(
            "daemon.started",
            inboxes=len(self.config.inboxes),
            workers=self.config.workers,
            processes=self.config.processes,
            once=once,
            state_dir=str(self.config.state_dir),
            ledger=self._ledger.where if self._ledger is not None else None,
        )
        self._notify(READY="1", STATUS=self._status(pool))

    def _reload(self, watcher: Watcher, pool: Workers) -> Watcher:
        """Apply a changed config file; a broken one is reported and the running one kept.

        Queued and in-flight work is not dropped: files already handed to the pool run
        with the settings of their inbox as it is now (or as it was, if it was removed).
        """
        old = self.config
        new = reloading.reread(old)
        if new is None:
            return watcher
        watching = self._watcher(new)
        try:  # before anything changes: an inbox that cannot be watched refuses the reload,
            # and so does an endpoint behind a proxy variable that cannot be used (review16)
            _check_proxies(new)
            watching.begin()
        except SetupError as exc:
            log.error("config.reload_failed", problems=[str(exc)], action="kept the running config")
            return watcher
        pool.reload(new)
        # the two overlapped: a file heard twice is one hint too many, no more; scan21: a
        # look at a share that hangs is left behind (watch.stop_late), not waited for
        watcher.stop(time.monotonic() + STOP_MARGIN, during="reload")
        watcher = self._watching(watching)
        self.config = new
        if self._ledger is not None:
            opening.follow_reload(self._ledger, new)
        self._intake.reloaded(new)
        self._stepper.poke(full=True)
        before = {inbox.path for inbox in old.inboxes}
        after = {inbox.path for inbox in new.inboxes}
        self._intake.walks.every(new.inboxes)
        log.info(
            "config.reloaded",
            inboxes=len(new.inboxes),
            added=sorted(str(p) for p in after - before),
            removed=sorted(str(p) for p in before - after),
        )
        return watcher

    def _watching(self, watcher: Watcher) -> Watcher:
        """``watcher`` is the one in use: no scan of whole inboxes while it adds watches."""
        self._watches, self._intake.walks.held = watcher, watcher.adding
        return watcher

    def _watcher(self, config: Config) -> Watcher:
        return Watcher(
            config.inboxes,
            self._intake.hint,
            on_change=self.metrics.inboxes,
            on_limit=self._look_soon.set,
            on_polling=self._rescan_soon.set,  # what came before its first snapshot
        )


def _check_proxies(config: Config) -> None:
    """SetupError if a proxy variable an endpoint would go through cannot be used
    (review16); httpx is imported only when some endpoint is reached over HTTP (``once``
    with the local engine imports no HTTP client)."""
    urls = [e.base_url for e in config.endpoints.values() if e.base_url]
    if urls:
        from dropscribe.transcribe import cutoff  # noqa: PLC0415 - see above

        cutoff.check_proxies(urls)

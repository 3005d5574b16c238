"""The main loop's intake: hints (watch events, scans, a worker that is done) become
settled files, ready for the workers.

A hint starts (or restarts) a file's quiet period in the settle tracker, unless the
file is ignored, in flight (then it is looked at again when its job ends) or the
ledger already has the final word on it; a file that stayed quiet is settled and
waits, in order, for a worker to have room. A file whose job ended waiting for a known
moment (wake15) is hinted again at that moment, and so is one the ledger says waits for a
moment still ahead (until16: after a restart too). Nothing here waits on a worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import heapq
import math
import queue
import stat as statmod
from collections import Counter, OrderedDict
from typing import TYPE_CHECKING, Protocol

import structlog

from dropscribe import names, sweep
from dropscribe.config import rules
from dropscribe.errors import LedgerError, LedgerUnavailable
from dropscribe.ingest import source
from dropscribe.ingest.settle import SettleTracker, Stat
from dropscribe.ingest.walk import Walks
from dropscribe.ingest.watcher import Hint, scan
from dropscribe.jobs.job import SettledFile
from dropscribe.ops import log as logmod
from dropscribe.outputs.sidecar import is_temp
from dropscribe.vocab import waits
from dropscribe.vocab.states import FileState

if TYPE_CHECKING:
    import os
    from collections.abc import Callable
    from pathlib import Path

    from dropscribe.ledger.interface import FileRow, Waiting
    from dropscribe.vocab.config import Config, Inbox
    from dropscribe.vocab.settings import FolderSettings

log = structlog.get_logger("dropscribe")

BURST = 10_000  # hints taken in a row; then files are looked at, even if more keep coming


class Workers(Protocol):
    """What the intake asks of the workers it hands files to."""

    def in_flight(self, path: Path) -> bool: ...

    def submit(self, file: SettledFile) -> bool: ...


class Intake:
    """Hints in, settled files out; owned by the main loop's thread."""

    def __init__(
        self,
        config: Callable[[], Config],
        ledger: Waiting | None,
        *,
        clock: Callable[[], float],
        wall: Callable[[], float],
        honour_waits: bool = True,
    ) -> None:
        self._config = config  # the config as last reloaded
        self._ledger = ledger
        # until16: a file the ledger says waits (next_try ahead) is looked at then, not at
        # once (not by once: its job runs, says it waits, and once exits 3 as before); a
        # reload looks at every file that waited before it at once (what it waits for may
        # have changed)
        self._honour_waits = honour_waits
        self._reloaded_at = -float("inf")
        self._clock = clock
        self._wall = wall
        # None: wake up. A Queue, not a SimpleQueue (flake16): on 3.11 and 3.12 a
        # SimpleQueue's get(timeout=...) whose wait a signal interrupts, with the handler
        # run after the timeout is over (a busy machine), waits without end; SIGTERM was
        # then never seen. (Its lock is not reentrant: no signal handler may put here.)
        self._hints: queue.Queue[Hint | None] = queue.Queue()
        self._tracker = SettleTracker()
        self._ready: OrderedDict[Path, SettledFile] = OrderedDict()  # settled, waiting for room
        self._dirty: set[Path] = set()  # touched while in flight: look again afterwards
        self._ignored: OrderedDict[Path, None] = OrderedDict()  # logged recently
        self._excluded = rules.excluded_dirs(config())
        # wake15: (due on the clock, path): a waiting file's next try, when its cause ends;
        # put by workers' threads (``finished``), kept in a heap by the loop's
        self._woke: queue.SimpleQueue[tuple[float, Path]] = queue.SimpleQueue()
        self._wakes: list[tuple[float, Path]] = []
        # attack15: each waiting file's latest due (a file that waits again at every
        # rescan, for a month's budget, put an entry in the heap each time: thousands)
        self._due: dict[Path, float] = {}
        self._afters: set[Path] = set()  # done17: hinted for a pending after: (said quietly)
        self._pending: set[str] | None = None  # review17b: during a scan, its pending after:s
        self._sweep = sweep.Sweep(config, ledger, wall)  # rows18: waits and afters kept true
        # scan21: the scans asked for (the loop's, a full one followed by rows18's sweep of
        # the ledger's rows of files gone or no longer waiting), walked a slice at a time
        self.walks = Walks(scan)

    def hint(self, hint: Hint | None) -> None:
        """Take a hint from any thread (None: only wake the loop)."""
        self._hints.put(hint)

    def reloaded(self, config: Config) -> None:
        self._excluded = rules.excluded_dirs(config)
        self._reloaded_at = self._wall()
        self.walks.drop()  # of the old inboxes: the reload asks for its own

    def waiting(self) -> tuple[int, int]:
        """(settled and waiting for room, settling)."""
        return len(self._ready), len(self._tracker)

    def empty(self) -> bool:
        return not self._tracker and not self._ready and not self.walks

    def take(self, pool: Workers, longest: float) -> None:
        """The hints that come within ``longest`` seconds (less when a file is due to be
        looked at sooner), then a burst of those waiting, without sleeping in between."""
        now = self._clock()
        self._gather_wakes()
        deadline = self._tracker.next_deadline(now)
        timeout = longest if deadline is None else min(longest, deadline)
        if self._wakes:
            timeout = max(0.0, min(timeout, self._wakes[0][0] - now))
        if self.walks.first() is not None:  # a scan's next slice is due at once
            timeout = 0.0
        with contextlib.suppress(queue.Empty):
            self._take(self._hints.get(timeout=timeout), pool)
            for _ in range(BURST):
                self._take(self._hints.get_nowait(), pool)

    def lost(self, item: SettledFile) -> None:
        """A worker process died with this file: settle it again."""
        self._hints.put(Hint(item.path))

    def scan_all(self) -> None:
        """Every inbox scanned now, whole, then rows18's sweep (the loop's: ``walks``)."""
        self.walks.every(self._config().inboxes)
        self.scan_some(math.inf)

    def scan(self, inbox: Inbox) -> None:
        self.walks.inbox(inbox)
        self.scan_some(math.inf)

    def scan_some(self, until: float) -> bool:
        """scan21: the scans asked for, walked until the clock says ``until`` (the loop
        hears a stop, a reload, the watches between two slices); True while one is left.
        A scan of whole inboxes reads the pending after:s once, as it begins."""
        while (walk := self.walks.first()) is not None:
            if walk.began is None and walk.whole:
                walk.afters = self._sweep.afters()
            self._pending = sweep.paths(walk.afters)
            now = self._wall()
            try:
                for inbox, path in walk.files(self._clock, until):
                    self._hint_file(inbox, path, scanned_at=now)
            finally:
                self._pending = None
            if not walk.done:
                return True
            if walk.full:
                self._sweep.swept(walk.afters)
            self.walks.finished(self._clock())
        return False

    def finished(self, item: SettledFile) -> None:
        """A worker is free: wake the loop to hand it the next settled file. wake15: a file
        that waits (``until``: a long Retry-After's pause, a budget's turn, every endpoint
        of its list paused) is looked at again then, not at the next rescan."""
        if item.until is not None:
            self._woke.put((self._clock() + max(0.0, item.until - self._wall()), item.path))
        if item.path in self._dirty:
            self._dirty.discard(item.path)
            self._hints.put(Hint(item.path))
        else:
            self._hints.put(None)

    def _inbox_of(self, path: Path) -> Inbox | None:
        return rules.inbox_of(self._config(), path)

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
                self.walks.folder(inbox, path)
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
            st = path.stat() if inbox.follow_symlinks else path.lstat()
        except OSError:
            return
        if not statmod.S_ISREG(st.st_mode):  # attack17b: not sent to a worker every rescan
            link = statmod.S_ISLNK(st.st_mode)
            self._note_ignored(path, inbox, "symbolic link" if link else "not a regular file")
            return
        if self._settled_before(path, st, settings):
            return
        seen = scanned_at if scanned_at is not None else heard_at
        if seen is not None:
            now -= min(max(0.0, seen - st.st_mtime), settings.settle_seconds)
        stat = Stat(st.st_size, st.st_mtime_ns)
        quiet = path in self._afters  # done17: a pending after:, not a new file
        self._afters.discard(path)
        if self._tracker.touch(path, stat, now, settings.settle_seconds):
            said = log.debug if quiet else log.info
            said("file.detected", path=str(path), inbox=inbox.name, bytes=st.st_size)

    def _settled_before(self, path: Path, st: os.stat_result, settings: FolderSettings) -> bool:
        """The ledger already has the final word on this very file (same size, mtime, inode).
        A shared ledger that cannot be asked: not now (all is scanned again once it is back)."""
        try:
            row = self._ledger.file(path) if self._ledger else None
        except LedgerUnavailable:
            return True
        identity = source.identity(st)
        if rules.settled_before(row, settings, identity=identity) is not None:
            return not self._after_pending(path)  # done17: its job tries the after: again
        return self._waits(path, row, identity, settings)

    def _after_pending(self, path: Path) -> bool:
        """done17: a done file whose ``after:`` failed comes again (at each rescan, at
        start) for its job to try the action once more; said at debug, not as news."""
        if self._pending is not None:  # a scan's: asked once for all its done files
            pending = names.text(path) in self._pending
        else:
            try:
                pending = self._ledger is not None and self._ledger.after_pending(path) is not None
            except LedgerError:
                return False
        if pending:
            self._afters.add(path)
        return pending

    def _waits(
        self,
        path: Path,
        row: FileRow | None,
        identity: tuple[int, int, int],
        settings: FolderSettings,
    ) -> bool:
        """until16: this very file waits for a moment still ahead, as the ledger says (kept
        across a restart, unlike an endpoint's pause): it is hinted then, not now. Not
        when its folder's settings changed since (a restart after an edit: the wait was
        for what it was to be sent as, not what it is now)."""
        if not self._honour_waits or row is None or row.next_try is None:
            return False
        if row.key.shaping != settings.shaping_hash():
            return False
        if row.state != FileState.ERROR or row.updated < self._reloaded_at:
            return False
        left = row.next_try - self._wall()
        if (row.size, row.mtime_ns, row.inode) != identity or left <= 0:
            return False
        until = dt.datetime.fromtimestamp(row.next_try).astimezone()
        if (why := self._unfounded(path, settings, left)) is not None:
            log.warning(
                "file.wait_dropped",
                path=str(path),
                inbox=row.inbox,
                until=until.isoformat(timespec="seconds"),
                reason=why,
                action="sent now",
            )
            return False
        if path not in self._due:  # said once for each wait
            log.info(
                "file.deferred",
                path=str(path),
                inbox=row.inbox,
                until=until.isoformat(timespec="seconds"),
                reason=row.error,
            )
        self._woke.put((self._clock() + left, path))
        return True

    def _unfounded(self, path: Path, settings: FolderSettings, left: float) -> str | None:
        """bounds17: why a stored wait of ``left`` seconds more is not honoured (None: it
        is): further ahead than dropscribe ever waits (another host's clock, a hand), or
        what it waited for (an endpoint's budget, price or URL, the folder's budget)
        changed since. A ledger that cannot say what it waited for: honoured."""
        if left > waits.LONGEST:
            days = waits.LONGEST / waits.DAY
            return f"further ahead than dropscribe ever waits ({days:g} days)"
        try:
            kept = self._ledger.waited_for(path) if self._ledger else None
        except LedgerError:
            return None
        if kept is not None and kept != waits.fingerprint(settings, self._config().endpoints.get):
            return "what it waited for changed since (an endpoint's budget, price, URL or key)"
        return None

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

    def settle(self, now: float) -> None:
        self._woken(now)
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
                self._ready[path] = SettledFile(inbox, path, settled=self._wall())

    def _woken(self, now: float) -> None:
        """wake15: waiting files whose time has come, hinted as a scan would (settled at
        once, unless written to since)."""
        self._gather_wakes()
        while self._wakes and self._wakes[0][0] <= now:
            due, path = heapq.heappop(self._wakes)
            if self._due.get(path) != due:
                continue  # attack15: a later report of the file replaced this one
            del self._due[path]
            if (inbox := self._inbox_of(path)) is not None:
                self._hint_file(inbox, path, scanned_at=self._wall())

    def _gather_wakes(self) -> None:
        """The workers' reports, in the heap: one due a file, its latest (attack15: the
        heap is made again from them when replaced entries are most of it)."""
        with contextlib.suppress(queue.Empty):
            while True:
                due, path = self._woke.get_nowait()
                if self._due.get(path) != due:
                    self._due[path] = due
                    heapq.heappush(self._wakes, (due, path))
        if len(self._wakes) > 2 * len(self._due) + 64:
            self._wakes = [(due, path) for path, due in self._due.items()]
            heapq.heapify(self._wakes)

    def dispatch(self, pool: Workers) -> None:
        left = Counter(item.inbox.name for item in self._ready.values())  # routing34b
        while self._ready:
            path, item = next(iter(self._ready.items()))
            left[item.inbox.name] -= 1
            if pool.in_flight(path):
                self._ready.pop(path)
                self._dirty.add(path)
                continue
            behind, workers = left[item.inbox.name], self._config().workers
            if not pool.submit(dataclasses.replace(item, behind=behind, workers=workers)):
                return  # full: keep it for the next turn
            self._ready.pop(path)

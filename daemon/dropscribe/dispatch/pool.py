"""A bounded queue feeding a fixed set of worker threads.

Each item is handled inside one error boundary: whatever the handler raises is
logged and the worker goes on. The in-flight set (queued or running) keeps a path from being
queued twice. ``on_done`` hears of each item handled, as the handler returned it if it
returned one (until16: a job's file with its ``until``).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Generic, TypeVar

import structlog

from dropscribe.vocab.config import KEPT

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

log = structlog.get_logger("dropscribe.pool")

T = TypeVar("T")
_STOP = object()


class Pool(Generic[T]):
    def __init__(
        self,
        workers: int,
        handler: Callable[[T], T | None],
        key: Callable[[T], Hashable],
        on_done: Callable[[T], None] | None = None,
        queue_size: int | None = None,
        halted: Callable[[], bool] = lambda: False,
    ) -> None:
        self._handler = handler
        self._halted = halted
        self._key = key
        self._on_done = on_done
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size or workers * 2)
        self._inflight: set[Hashable] = set()
        self._running = 0
        self._lock = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"dropscribe-worker-{n}", daemon=True)
            for n in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, item: T) -> bool:
        """Queue an item unless it is already in flight or the queue is full; never blocks."""
        key = self._key(item)
        with self._lock:
            if self._closed or self._halted() or key in self._inflight:
                return False
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                return False
            self._inflight.add(key)
            return True

    def in_flight(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._inflight

    def idle(self) -> bool:
        with self._lock:
            return not self._inflight

    def counts(self) -> tuple[int, int]:
        """(queued, running)."""
        with self._lock:
            return len(self._inflight) - self._running, self._running

    def _work(self) -> None:
        while True:
            taken = self._queue.get()
            if taken is _STOP:
                return
            item: T = taken  # type: ignore[assignment]
            with self._lock:
                if self._halted():  # not started: it runs at the next start
                    self._inflight.discard(self._key(item))
                    self._lock.notify_all()
                    continue
                self._running += 1
            ended: T | None = None
            try:
                ended = self._handler(item)
            except Exception:
                log.exception("worker.crashed", item=str(item))
            finally:
                with self._lock:
                    self._running -= 1
                    self._inflight.discard(self._key(item))
                    self._lock.notify_all()
                if self._on_done is not None:
                    self._on_done(item if ended is None else ended)

    def close(self, grace: float) -> int:
        """Drop what has not started, let running handlers finish for up to ``grace`` seconds,
        and ``KEPT`` more for those still running (the stop's margin): a stopping daemon's
        ledger gives every wait up a moment before the grace ends (grace18), and a job then
        unwinds, a write keeping what was paid for (uploads19) waits ``KEPT`` past it.
        flake22: at load 16 a job given up 0.2 s before the grace's end was not done
        unwinding at it, and was said abandoned (its worker process killed) though it
        ended a moment later. A job still running then (an upload in flight) costs the
        stop ``KEPT`` more, within its margin.

        Returns how many were still running when the grace period and its margin ran out.
        """
        with self._lock:
            self._closed = True
            while True:
                try:
                    dropped = self._queue.get_nowait()
                except queue.Empty:
                    break
                self._inflight.discard(self._key(dropped))  # type: ignore[arg-type]
        for _ in self._threads:
            self._queue.put(_STOP)
        deadline = time.monotonic() + grace
        with self._lock:
            while self._running and (left := deadline + KEPT - time.monotonic()) > 0:
                self._lock.wait(left)
            remaining = self._running
        if not remaining:
            for thread in self._threads:
                thread.join()
        return remaining

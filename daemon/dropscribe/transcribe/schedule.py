"""How the local engine keeps every core busy: pieces made ahead, batches evenly at the
end, several batches at once, results in order.

On a quiet two-core machine the engine used 1.2 cores of 2 (CPU time 33.6 s, wall clock
26.3 s on ten minutes of speech): the VAD and decoding ran between batches while a core
waited, and the recording's last batch (often one piece) ran alone. Now the pieces are
made in a thread of their own (``ahead``), the last ``size * workers`` pieces are shared
out evenly (``batches``), and ``in_order`` runs ``workers`` batches at once. What each
batch holds depends only on the recording, never on timing, so the same file gives the
same transcript every run.
"""

from __future__ import annotations

import collections
import contextvars
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator

T = TypeVar("T")
R = TypeVar("R")


class _End:
    """The producer is done: ``failed`` is its exception, if it raised one."""

    def __init__(self, failed: BaseException | None = None) -> None:
        self.failed = failed


def batches(items: Iterable[T], size: int, workers: int = 1) -> Iterator[list[T]]:
    """``items`` in batches of ``size``, in order. The first ``workers`` batches go as
    soon as they are full (every core starts at once); after them, ``size * workers``
    items are held back, so that the last of them are shared out as evenly as they go
    (17 pieces, 4 a batch, 2 at once: 4, 4, 4, 3, 2 rather than 4, 4, 4, 4, 1): no core
    is left with the tail alone."""
    held: collections.deque[T] = collections.deque()
    made = 0
    for item in items:
        held.append(item)
        if len(held) > (size * workers if made >= workers else size - 1):
            yield [held.popleft() for _ in range(size)]
            made += 1
    while held:
        share = -(-len(held) // max(1, min(workers, len(held))))
        yield [held.popleft() for _ in range(min(size, share))]
        workers -= 1


def ahead(items: Iterable[T], depth: int) -> Generator[T]:
    """``items`` made in a thread of their own (with the caller's context), at most
    ``depth`` ahead of their consumer; at ``depth`` 0, in the consumer's thread, as it
    asks. The producer's exception is raised here; a consumer that stops early (closes
    this generator) stops the producer at its next item."""
    if depth <= 0:
        yield from items
        return
    made: queue.Queue[object] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                made.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(_End(exc))
            return
        put(_End())

    thread = threading.Thread(
        target=contextvars.copy_context().run, args=(produce,), name="dropscribe-pieces"
    )
    thread.start()
    try:
        while not isinstance(item := made.get(), _End):
            yield item  # type: ignore[misc]
        if item.failed is not None:
            raise item.failed
    finally:
        stop.set()
        thread.join()


def in_order(work: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``work`` of each item, in the items' order, ``workers`` items at once (each in a
    thread of its own, with the caller's context: its log fields) and no more held."""
    if workers <= 1:
        yield from map(work, items)
        return
    pending: collections.deque[Future[R]] = collections.deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="dropscribe-batch") as pool:
        try:
            for item in items:
                pending.append(pool.submit(contextvars.copy_context().run, work, item))
                if len(pending) >= workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for left in pending:  # an error or an abort: what has not started never does
                left.cancel()

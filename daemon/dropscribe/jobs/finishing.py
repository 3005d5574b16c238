"""uploads19: the jobs holding a transcript just paid for, until they end. A stop's
grace over, the pool lingers ``KEPT`` for them (``Pool.close``): their ledger writes wait
that long for a ledger another process holds a moment, instead of the request being
asked for, and paid, again at the next start. Counted from the answer, not from the
write: between two writes a finished job keeps nothing queued in the ledger."""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


class Finishing:
    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def of(self, fresh: bool) -> Iterator[None]:
        """Counted while the block runs, if ``fresh`` (a transcript paid for)."""
        with self._lock:
            self._count += fresh
        try:
            yield
        finally:
            with self._lock:
                self._count -= fresh

    def __bool__(self) -> bool:
        return self._count > 0

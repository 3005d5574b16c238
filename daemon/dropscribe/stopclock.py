"""A stop's grace, counted from the moment it is asked (moved here from service.py)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


class StopClock:
    """pgstop19: a stop's grace counted from the moment it is asked, the ledger given up
    when it is over even while the main loop itself waits in a statement (a table another
    session locked held a stop 30 s: the loop notices a stop only between statements).
    A thread of its own looks at ``stop`` every ``tick``: the signal handler that sets it
    may take no lock to tell anyone else. ``heard`` is called then too (uploads19: the
    workers' ``abort``, so that no upload starts once a stop is asked, loop busy or not)."""

    def __init__(
        self,
        stop: threading.Event,
        give_up: Callable[[float], None],
        grace: Callable[[], float],
        heard: Callable[[], None],
        tick: float,
    ) -> None:
        self._stop, self._give_up, self._grace, self._heard = stop, give_up, grace, heard
        self._tick = tick
        self._asked: float | None = None  # the stop's end (monotonic), once it is asked
        self._over = threading.Event()  # the loop has ended: the clock too
        self._thread = threading.Thread(target=self._watch, name="dropscribe-stop-clock")
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            if self._over.wait(self._tick):
                return
        self._asked = time.monotonic() + self._grace()
        self._heard()
        self._give_up(self._asked)

    def ends(self, grace: float) -> float:
        """When the stop's grace is over: ``grace`` from the moment it was asked, or from
        now (the loop ended by itself, or before the clock saw the stop)."""
        self._over.set()
        self._thread.join()
        return self._asked if self._asked is not None else time.monotonic() + grace

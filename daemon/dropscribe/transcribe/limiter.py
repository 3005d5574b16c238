"""Adaptive concurrency for one endpoint: fewer uploads at once after a 429, then more.

Additive increase, multiplicative decrease, as TCP does: a rate-limit answer
halves the number of uploads allowed at once (never below one); every ``limit``
successes in a row allow one more, up to the configured ``max_concurrency``.
"""

from __future__ import annotations

import threading


class Limiter:
    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.limit = maximum
        self.in_use = 0
        self._successes = 0
        self._cond = threading.Condition()

    def acquire(self, timeout: float) -> bool:
        """Take a slot, waiting up to ``timeout`` seconds for one; False if none came."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.in_use < self.limit, timeout):
                return False
            self.in_use += 1
            return True

    def release(self) -> None:
        with self._cond:
            self.in_use -= 1
            self._cond.notify()

    def throttled(self) -> int | None:
        """The endpoint said "too many requests": halve the limit. Returns the new one."""
        with self._cond:
            self._successes = 0
            new = max(1, self.limit // 2)
            if new == self.limit:
                return None
            self.limit = new
            return new

    def succeeded(self) -> int | None:
        """An upload went through; returns the new limit when this raised it."""
        with self._cond:
            if self.limit >= self.maximum:
                return None
            self._successes += 1
            if self._successes < self.limit:
                return None
            self._successes = 0
            self.limit += 1
            self._cond.notify()
            return self.limit

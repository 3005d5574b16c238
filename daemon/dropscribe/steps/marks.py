"""Which files the stepper looks at besides the ledger's recently done ones (stepclaims33).

``finished``: files this daemon's workers finished, looked at every turn until their
done state is read (a queued or slow write lands after its own timestamp, so a window
of timestamps would miss it) or their time is up (the next full rescan has passed).
``elsewhere``: files one of whose steps another host holds, looked at again once that
host's lease has run out (it is renewed while that host lives).
``retry_at``: a step that failed here, due again on the monotonic clock: the ledger's
``next_at`` is wall-clock time, and a clock set back an hour would hold it an hour more
(attack17); one due here goes whatever the wall clock says."""

from __future__ import annotations

import threading

AFTER_LEASE = 0.5  # seconds after another host's lease runs out before a step is claimed again


class Marks:
    """Thread-safe: workers (or the process pool's reader) mark, the stepper takes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fresh: dict[str, float] = {}  # path -> looked for until
        self._later: dict[str, float] = {}  # path -> looked at again from
        self._retry: dict[tuple[str, str, str], float] = {}  # (path, step, shaping) -> due
        self._ripe: set[tuple[str, str, str]] = set()  # those found due by this turn

    def finished(self, path: str, until: float) -> None:
        with self._lock:
            self._fresh[path] = until

    def elsewhere(self, path: str, at: float) -> None:
        with self._lock:
            self._later[path] = min(at + AFTER_LEASE, self._later.get(path, float("inf")))

    def due(self, now: float) -> list[str]:
        """Files finished here not read done yet, and those whose other host's lease
        has run out by ``now`` (forgotten: a claim refused again marks them again)."""
        with self._lock:
            self._fresh = {p: until for p, until in self._fresh.items() if until > now}
            later = [p for p, at in self._later.items() if at <= now]
            for path in later:
                del self._later[path]
            return [*self._fresh, *later]

    def retry_at(self, step: tuple[str, str, str], due: float) -> None:
        """``step`` (path, name, shaping) failed here and is due again at ``due``
        (``time.monotonic()``)."""
        with self._lock:
            self._retry[step] = due

    def retries_due(self, now: float) -> list[str]:
        """The files of steps due again by ``now`` (monotonic); each such step is
        ``ripe`` until the next call."""
        with self._lock:
            self._ripe = {step for step, due in self._retry.items() if due <= now}
            for step in self._ripe:
                del self._retry[step]
            return sorted({path for path, _, _ in self._ripe})

    def ripe(self, step: tuple[str, str, str]) -> bool:
        """``step`` was found due this turn, whatever the wall clock says now."""
        with self._lock:
            return step in self._ripe

    def done(self, path: str) -> None:
        """``path`` was read done: no longer waited for."""
        with self._lock:
            self._fresh.pop(path, None)

    def next_at(self) -> float | None:
        """When a file marked elsewhere is due next (None: none is)."""
        with self._lock:
            return min(self._later.values(), default=None)

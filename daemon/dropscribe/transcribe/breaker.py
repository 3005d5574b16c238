"""Pure: when an endpoint is paused (circuit breaker), and when it may be probed again.

An endpoint that keeps failing with retryable errors (outage, overload) is paused
as a whole instead of burning every file's attempts. A failure that no retry can
fix soon (bad key, unknown model, exhausted quota) pauses it at once. After the
pause one upload goes through as a probe: success closes the breaker, failure
pauses it again for twice as long (up to a cap).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dropscribe.vocab.endpoints import Endpoint

ONCE_WAITS = 30.0  # once21: a Retry-After longer than this ends once's use of the endpoint


@dataclass
class Breaker:
    threshold: int = 5  # consecutive retryable failures that pause the endpoint
    cooldown: float = 30.0  # first pause, seconds
    max_cooldown: float = 900.0
    failures: int = 0
    paused_until: float = 0.0
    pause: float = 0.0  # the current pause length; doubles while probes fail
    probing: bool = False
    reason: str | None = None
    held: bool = False  # hostile14b: paused because the server asked (a long Retry-After)
    outages: int = 0  # outage20: failures in a row that found no working server
    files: set[str] = field(default_factory=set)  # once21: whose uploads the row's failures were
    unanswered: int = 0  # review21: failures in a row that had no answer (a 429 is an answer)
    served: bool = False  # once21: an upload to it has succeeded (or was answered as the file's)
    heeded: float | None = None  # when the other process's pause heeded here was written
    heard: float | None = None  # review22: the last such pause's (each is heeded once)

    @classmethod
    def of(cls, endpoint: Endpoint) -> Breaker:
        """A closed breaker with the endpoint's settings."""
        return cls(
            threshold=endpoint.pause_after_failures,
            cooldown=endpoint.pause_seconds,
            max_cooldown=max(endpoint.pause_seconds, 900.0),
        )

    def wait(self, now: float) -> float:
        """Seconds to wait before uploading; 0 means go (and may make this upload the probe)."""
        if self.reason is None:
            return 0.0
        if now < self.paused_until:
            return self.paused_until - now
        if self.probing:
            return 0.5  # someone else's probe is in flight: look again shortly
        self.probing = True
        return 0.0

    def succeeded(self) -> bool:
        """An upload worked. True if that resumed a paused endpoint."""
        resumed = self.reason is not None
        self.failures = 0
        self.outages = 0
        self.files.clear()
        self.unanswered = 0
        self.served = True
        self.pause = 0.0
        self.paused_until = 0.0
        self.probing = False
        self.reason = None
        self.held = False
        self.heeded = None
        return resumed

    def heed(self, now: float, wait: float, reason: str, *, asked: bool, written: float) -> bool:
        """Another worker process paused the endpoint for ``wait`` more seconds (its entry
        ``written`` then): paused here as long, then probed as after any pause. True if
        that is news (the pause here ended sooner). review22: each entry is heeded once,
        its pause then probed as any (one from a board written under a clock set years
        ahead was heeded again as each hour's pause ended, the endpoint never probed)."""
        if written == self.heard:
            return False
        if self.reason is not None and self.paused_until >= now + wait - 1.0:
            return False
        self.heard = written
        self.paused_until = now + wait
        self.pause = max(self.pause, wait)
        self.probing = False
        self.reason = reason
        self.held = asked
        self.heeded = written
        return True

    def resumed_elsewhere(self, written: float) -> bool:
        """Another process found the endpoint working (its entry ``written`` then): a
        pause heeded from before that ends here too. True if it did."""
        if self.heeded is None or written <= self.heeded or self.reason is None:
            return False
        return self.succeeded()

    def released(self) -> None:
        """An upload ended without a verdict on the endpoint (the file was unreadable, ...)."""
        self.probing = False

    def failed(
        self,
        now: float,
        reason: str,
        *,
        at_once: bool = False,
        outage: bool = False,
        who: str | None = None,
        answered: bool = False,
    ) -> float | None:
        """An upload (of ``who``'s) failed (``outage``: no working server was reached;
        ``answered``: the server said so, a 429). Returns the pause length if this paused
        the endpoint."""
        self.failures += 1
        if answered:  # review21: the server is there; once's row starts again after it
            self.unanswered = 0
            self.files.clear()
        else:
            self.unanswered += 1
            if who is not None:
                self.files.add(who)
        self.outages = self.outages + 1 if outage else 0
        if not (at_once or self.probing or self.failures >= self.threshold):
            return None
        self.pause = min(self.max_cooldown, self.pause * 2 if self.pause else self.cooldown)
        if at_once:  # a bad key or an empty account does not mend itself in seconds
            self.pause = min(max(self.pause, self.cooldown * 10), self.max_cooldown * 4)
        self.paused_until = now + self.pause
        self.probing = False
        self.reason = reason
        self.held = False
        self.heeded = None
        return self.pause

    def hold(self, now: float, seconds: float, reason: str) -> None:
        """The server asked for ``seconds`` of quiet (a 429's long Retry-After): paused
        that long (or longer, if already), then probed as after any pause."""
        self.paused_until = max(self.paused_until, now + seconds)
        self.outages = 0  # it answered: it is there
        self.probing = False
        self.reason = reason
        self.held = True
        self.heeded = None

    def down(
        self, max_attempts: int, outages: int, retry_after: float | None, *, row: bool = True
    ) -> str | None:
        """once21: why ``once`` calls the endpoint unreachable after a retryable failure
        (None: it is not). ``outages``: no server found, in a row, any file's (outage20).
        A fault that drops or fails every upload, whichever file, is the endpoint's once
        ``min(threshold, max_attempts)`` failures in a row without an answer (a 429 is an
        answer, review21: it starts the row again) came from several files, or
        none has been answered in this run; one file failing while others are answered
        is that file's. ``retry_after``: a server asking for more quiet than once waits.
        ``row`` False: this failure (a 429: the server is there) never ends the row."""
        if outages >= max_attempts:
            return f"{outages} tries in a row found no server"
        if retry_after is not None and retry_after > ONCE_WAITS:
            return f"it asked for {retry_after:.0f} s of quiet (Retry-After), more than once waits"
        if not row or self.unanswered < min(self.threshold, max_attempts):
            return None
        failed = self.unanswered
        if len(self.files) > 1:
            files = len(self.files)
            return f"{failed} uploads in a row, of {files} files, failed; none was answered"
        if not self.served:
            return f"{failed} uploads in a row failed; none was answered in this run"
        return None

"""Each endpoint's health as uploads find it: its breaker (paused after failures or
at once for a bad key, probed by one upload when the pause ends), its concurrency
limit (lowered on 429, raised again as uploads succeed), and, in ``once``, what
ruled it (or a model on it) out for good. Bookkeeping only: the uploader waits."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import structlog

from dropscribe.errors import EndpointRuledOut, EndpointUnreachable, ModelGone
from dropscribe.transcribe.backoff import MAX_RETRY_AFTER
from dropscribe.transcribe.breaker import Breaker
from dropscribe.transcribe.limiter import Limiter

if TYPE_CHECKING:
    from collections.abc import Callable

    from dropscribe.errors import EndpointError, RetryableError, TranscriptionError
    from dropscribe.ops.metrics import Metrics
    from dropscribe.transcribe.board import Board
    from dropscribe.vocab.endpoints import Endpoint

log = structlog.get_logger("dropscribe")


class Health:
    """Every endpoint's breaker and concurrency limit, by endpoint name."""

    def __init__(
        self,
        endpoints: dict[str, Endpoint],
        metrics: Metrics,
        clock: Callable[[], float],
        board: Board | None = None,
    ) -> None:
        self._board = board  # where `status` reads each endpoint's state
        if board is not None:
            board.start(list(endpoints))
        self._metrics = metrics
        self._clock = clock
        self._limits = {name: Limiter(ep.max_concurrency) for name, ep in endpoints.items()}
        self._breakers = {name: Breaker.of(ep) for name, ep in endpoints.items()}
        self._lock = threading.Lock()
        self._ruled_out: dict[str, EndpointError] = {}  # once: what made an endpoint unusable

    def replace(self, name: str, endpoint: Endpoint) -> None:
        """A reloaded endpoint that changed starts afresh: a pause (a bad key, say) ends,
        and the next upload probes it."""
        with self._lock:
            self._limits[name] = Limiter(endpoint.max_concurrency)
            old = self._breakers.get(name)
            self._breakers[name] = Breaker.of(endpoint)
        if old is not None and old.reason is not None:
            self._metrics.paused.labels(name).set(0)
            if self._board is not None:
                self._board.set(name, "ok")
            log.warning("endpoint.reloaded", endpoint=name, action="paused no more: probing it now")

    def limiter(self, endpoint: str) -> Limiter:
        return self._limits[endpoint]

    def breaker(self, endpoint: str) -> tuple[float, Breaker, bool]:
        """How long to wait for the endpoint's breaker (0: go), the breaker, and whether
        this upload is the probe that ends a pause. A pause another worker process wrote
        on the board is heeded first (session 22)."""
        seen = self._board.other(endpoint) if self._board is not None else None
        with self._lock:
            breaker = self._breakers[endpoint]
            heeded = self._heeded(breaker, seen) if seen is not None else None
            probing = breaker.probing
            wait = breaker.wait(self._clock())
            decided = wait, breaker, breaker.probing and not probing
        if heeded is not None and seen is not None:
            self._said_elsewhere(endpoint, heeded, seen)
        return decided

    def _heeded(self, breaker: Breaker, seen: dict[str, Any]) -> float | None:
        """What another process's entry ``seen`` changed here: the seconds of its pause
        now heeded, 0.0 for a pause heeded that it ended, None for nothing."""
        written = seen.get("since") or 0.0
        if seen.get("state") == "ok":
            return 0.0 if breaker.resumed_elsewhere(written) else None
        wait = (seen.get("next_probe") or 0.0) - time.time()
        if seen.get("state") != "paused" or wait <= 0:
            return None
        # review22: no longer than a pause of this process's own (a board written under a
        # clock set years ahead, or by a hand, paused the endpoint until 9999)
        wait = min(wait, max(MAX_RETRY_AFTER, breaker.max_cooldown * 4))
        reason = seen.get("reason") or "paused after failures"
        asked = seen.get("asked") is True
        if not breaker.heed(self._clock(), wait, reason, asked=asked, written=written):
            return None
        return wait

    def _said_elsewhere(self, endpoint: str, seconds: float, seen: dict[str, Any]) -> None:
        """Log and count a pause heeded from another process, or its end."""
        if not seconds:
            self._metrics.paused.labels(endpoint).set(0)
            log.warning("endpoint.resumed", endpoint=endpoint, by_process=seen.get("pid"))
            return
        self._metrics.paused.labels(endpoint).set(1)
        log.warning(
            "endpoint.paused",
            endpoint=endpoint,
            seconds=round(seconds, 1),
            reason=seen.get("reason"),
            status=seen.get("status"),
            by_process=seen.get("pid"),
            action="paused by another worker process's uploads; its files wait here too",
        )

    def unprobe(self, breaker: Breaker, probe: bool) -> None:
        """No verdict on the endpoint from the probe: let the next upload probe it."""
        if probe:
            with self._lock:
                breaker.released()

    def released(self, endpoint: str) -> None:
        """An answer that says nothing about the endpoint's health."""
        with self._lock:
            self._breakers[endpoint].released()

    def usable(self, endpoint: str, model: str) -> None:
        """In ``once``: raise ``EndpointRuledOut`` once the endpoint (or this model on it)
        failed a file for good."""
        with self._lock:
            ruled_out = self._ruled_out.get(endpoint) or self._ruled_out.get(f"{endpoint}\0{model}")
        if ruled_out is not None:
            error = EndpointRuledOut(ruled_out.message, status=ruled_out.status)
            error.outage = ruled_out.outage  # unreachable: the files stay where they are
            raise error

    def rule_out(self, endpoint: str, model: str, failure: EndpointError) -> None:
        """In ``once``: every later file of this endpoint (of this model, when the model
        is gone) fails at once."""
        at = f"{endpoint}\0{model}" if isinstance(failure, ModelGone) else endpoint
        with self._lock:
            self._ruled_out.setdefault(at, failure)
        if self._board is not None and failure.outage:
            self._board.set(endpoint, "unreachable", failure.message, failure.status)

    def throttled(self, endpoint: str) -> None:
        limit = self._limits[endpoint].throttled()
        if limit is not None:
            log.warning(
                "endpoint.concurrency", endpoint=endpoint, limit=limit, reason="rate limited (429)"
            )

    def hold(self, endpoint: str, seconds: float, reason: str, status: int) -> None:
        """hostile14b: the server asked for ``seconds`` of quiet (a long Retry-After):
        the endpoint is paused that long, and no upload waits for it in a worker."""
        with self._lock:
            self._breakers[endpoint].hold(self._clock(), seconds, reason)
        self._metrics.pauses.labels(endpoint).inc()
        self._metrics.paused.labels(endpoint).set(1)
        if self._board is not None:
            self._board.set(endpoint, "paused", reason, status, seconds, asked=True)
        log.warning(
            "endpoint.paused",
            endpoint=endpoint,
            seconds=round(seconds, 1),
            reason=reason,
            status=status,
            retry_after=True,
            action="its files wait where they are and come again after the pause;"
            " no worker waits for it",
        )

    def succeeded(self, endpoint: str) -> None:
        raised = self._limits[endpoint].succeeded()
        if raised is not None:
            log.info(
                "endpoint.concurrency", endpoint=endpoint, limit=raised, reason="ramping back up"
            )
        with self._lock:
            resumed = self._breakers[endpoint].succeeded()
        if resumed:
            self._metrics.paused.labels(endpoint).set(0)
            if self._board is not None:
                self._board.set(endpoint, "ok")
            log.warning("endpoint.resumed", endpoint=endpoint)

    def failed(
        self,
        endpoint: str,
        failure: TranscriptionError,
        *,
        at_once: bool = False,
        who: str | None = None,
    ) -> int:
        """Count the failure (of ``who``'s upload); returns the endpoint's outages in a row
        (outage20: ``once`` rules it out at ``max_attempts`` of them, whichever files they
        came from). A 429 is an answer: the server is there, and asks for patience."""
        outage = bool(getattr(failure, "outage", False)) and failure.status != 429
        with self._lock:
            breaker = self._breakers[endpoint]
            now = self._clock()
            answered = failure.status == 429  # once's row: the server is there
            pause = breaker.failed(
                now, failure.message, at_once=at_once, outage=outage, who=who, answered=answered
            )
            outages = breaker.outages
        if pause is not None:
            self._metrics.pauses.labels(endpoint).inc()
            self._metrics.paused.labels(endpoint).set(1)
            if self._board is not None:
                self._board.set(endpoint, "paused", failure.message, failure.status, pause)
            log.error(
                "endpoint.paused",
                endpoint=endpoint,
                seconds=round(pause, 1),
                reason=failure.message,
                status=failure.status,
                action="uploads to it wait; a probe is sent when the pause ends",
            )
        return outages

    def down(self, endpoint: Endpoint, model: str, failure: RetryableError, outages: int) -> None:
        """In ``once`` (once21), after a retryable failure: when the endpoint is to be
        called unreachable (``Breaker.down``), it is ruled out and ``EndpointUnreachable``
        raised, saying why: the file stays where it is and ``once`` exits 3."""
        with self._lock:
            breaker = self._breakers[endpoint.name]
            row = failure.status != 429  # rate limited: there, and asking for patience
            why = breaker.down(endpoint.max_attempts, outages, failure.retry_after, row=row)
        if why is None:
            return
        unreachable = EndpointUnreachable(f"{failure.message} ({why})", status=failure.status)
        self.rule_out(endpoint.name, model, unreachable)
        raise unreachable from failure

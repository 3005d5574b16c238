"""One file's upload with the retry policy, per-endpoint concurrency and the breaker.

Retryable failures are tried again after the backoff (never sooner than the
server asked); an endpoint that keeps failing, or cannot serve anyone (bad key,
unknown model, exhausted quota), is paused as a whole, and uploads wait for it
instead of using up their attempts.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from typing import TYPE_CHECKING

import structlog

from dropscribe import retry
from dropscribe.breaker import Breaker
from dropscribe.errors import EndpointError, PermanentError, RetryableError, TranscriptionError
from dropscribe.limiter import Limiter
from dropscribe.metrics import Metrics

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from dropscribe.api import Transcriber, Transcript
    from dropscribe.journal import Journal
    from dropscribe.rules import FolderSettings

log = structlog.get_logger("dropscribe")


class Abandoned(Exception):  # noqa: N818 - a signal between two functions, not an error
    """The daemon is stopping; leave the job for the next start."""


class Uploader:
    def __init__(
        self,
        journal: Journal,
        clients: dict[str, Transcriber],
        abort: threading.Event,
        *,
        wait_for_endpoints: bool = True,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._journal = journal
        self._clients = clients
        self._abort = abort
        self._wait_for_endpoints = wait_for_endpoints
        self._jitter = jitter
        self._clock = clock
        self._limits = {name: Limiter(c.endpoint.max_concurrency) for name, c in clients.items()}
        self._breakers = {name: self._breaker(c) for name, c in clients.items()}
        self._all = list(clients.values())
        self._lock = threading.Lock()

    def clients(self) -> list[Transcriber]:
        """Every client, including ones a reload replaced (uploads may still be using them)."""
        with self._lock:
            return list(self._all)

    def client(self, name: str) -> Transcriber:
        with self._lock:
            return self._clients[name]

    def set_clients(self, clients: dict[str, Transcriber]) -> None:
        """Swap in a reloaded set of endpoints; unchanged ones keep their state."""
        with self._lock:
            for name, client in clients.items():
                if self._clients.get(name) is not client:
                    self._limits[name] = Limiter(client.endpoint.max_concurrency)
                    self._breakers[name] = self._breaker(client)
                    self._all.append(client)
            self._clients = dict(clients)

    @staticmethod
    def _breaker(client: Transcriber) -> Breaker:
        return Breaker(
            threshold=client.endpoint.pause_after_failures,
            cooldown=client.endpoint.pause_seconds,
            max_cooldown=max(client.endpoint.pause_seconds, 900.0),
        )

    def _sleep(self, seconds: float) -> None:
        if self._abort.wait(seconds):
            raise Abandoned

    @contextlib.contextmanager
    def _slot(self, endpoint: str) -> Iterator[None]:
        """Wait for the endpoint's breaker and one of its concurrent upload slots."""
        while True:
            with self._lock:
                wait = self._breakers[endpoint].wait(self._clock())
            if not wait:
                break
            self._sleep(min(wait, 1.0))
        limit = self._limits[endpoint]
        while not limit.acquire(timeout=0.25):
            if self._abort.is_set():
                raise Abandoned
        try:
            yield
        finally:
            limit.release()

    def upload(
        self, path: Path, settings: FolderSettings, key: str, attempt: int, size: int
    ) -> Transcript:
        """Upload until it works, the attempts run out, or the failure is the file's."""
        client = self.client(settings.endpoint)
        endpoint = client.endpoint
        while True:
            if self._abort.is_set():
                raise Abandoned
            failure: TranscriptionError | None = None
            with self._slot(settings.endpoint):
                log.info("upload.started", endpoint=endpoint.name, model=settings.model,
                         attempt=attempt, bytes=size)  # fmt: skip
                started = time.monotonic()
                try:
                    transcript = client.transcribe(path, settings)
                except TranscriptionError as exc:
                    failure = exc
                except OSError as exc:
                    failure = PermanentError(f"cannot read file: {exc.strerror or exc}")
            elapsed = time.monotonic() - started
            ms = round(elapsed * 1000)
            self._measure(endpoint.name, failure, elapsed, size)
            if failure is None:
                self._succeeded(endpoint.name)
                log.info("upload.finished", status=200, ms=ms, bytes=size,
                         request_id=transcript.request_id, attempt=attempt)  # fmt: skip
                return transcript
            log.warning("upload.failed", status=failure.status, error=failure.message, ms=ms,
                        request_id=failure.request_id, attempt=attempt,
                        retryable=isinstance(failure, RetryableError))  # fmt: skip
            if isinstance(failure, EndpointError):
                self._failed(endpoint.name, failure, at_once=True)
                if not self._wait_for_endpoints:
                    raise failure
                continue  # not the file's fault: same attempt once the endpoint is back
            if isinstance(failure, RetryableError):
                self._failed(endpoint.name, failure)
                if failure.status == 429:
                    self._throttled(endpoint.name)
            elif failure.status is not None:
                self._succeeded(endpoint.name)  # it answered: alive, the file is at fault
            else:
                with self._lock:
                    self._breakers[endpoint.name].released()
            last = not isinstance(failure, RetryableError) or attempt >= endpoint.max_attempts
            state = "failed" if last else "retrying"
            self._journal.job_failed(
                key, failure.message, failure.status, failure.request_id, state
            )
            if last:
                failure.attempts = attempt
                raise failure
            wait = retry.delay(attempt - 1, endpoint.backoff_max, self._jitter(),
                               failure.retry_after)  # fmt: skip
            log.info("upload.retrying", in_seconds=round(wait, 3), attempt=attempt)
            self._sleep(wait)
            self._metrics.retries.labels(endpoint.name).inc()
            attempt += 1
            self._journal.start_attempt(key, settings.shaping(), attempt)

    def _measure(
        self, endpoint: str, failure: TranscriptionError | None, elapsed: float, size: int
    ) -> None:
        status = "200" if failure is None else str(failure.status or "error")
        self._metrics.uploads.labels(endpoint, status).inc()
        self._metrics.latency.labels(endpoint).observe(elapsed)
        if failure is None:
            self._metrics.upload_bytes.labels(endpoint).inc(size)

    def _throttled(self, endpoint: str) -> None:
        limit = self._limits[endpoint].throttled()
        if limit is not None:
            log.warning("endpoint.concurrency", endpoint=endpoint, limit=limit,
                        reason="rate limited (429)")  # fmt: skip

    def _succeeded(self, endpoint: str) -> None:
        raised = self._limits[endpoint].succeeded()
        if raised is not None:
            log.info("endpoint.concurrency", endpoint=endpoint, limit=raised,
                     reason="ramping back up")  # fmt: skip
        with self._lock:
            resumed = self._breakers[endpoint].succeeded()
        if resumed:
            self._metrics.paused.labels(endpoint).set(0)
            log.warning("endpoint.resumed", endpoint=endpoint)

    def _failed(self, endpoint: str, failure: TranscriptionError, *, at_once: bool = False) -> None:
        with self._lock:
            pause = self._breakers[endpoint].failed(self._clock(), failure.message, at_once=at_once)
        if pause is not None:
            self._metrics.pauses.labels(endpoint).inc()
            self._metrics.paused.labels(endpoint).set(1)
            log.error("endpoint.paused", endpoint=endpoint, seconds=round(pause, 1),
                      reason=failure.message, status=failure.status,
                      action="uploads to it wait; a probe is sent when the pause ends")  # fmt: skip

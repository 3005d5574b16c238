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

from dropscribe.errors import (
    Abandoned,
    EndpointError,
    ModelGone,
    PermanentError,
    Replan,
    RetryableError,
    TranscriptionError,
    Unusable,
)
from dropscribe.ops.metrics import Metrics
from dropscribe.transcribe import backoff, kinds, models
from dropscribe.transcribe.breaker import Breaker
from dropscribe.transcribe.clients import Clients
from dropscribe.transcribe.gone import Gone
from dropscribe.transcribe.limiter import Limiter
from dropscribe.transcribe.limits import Limits
from dropscribe.vocab.states import JobState

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from dropscribe.ledger.interface import Ledger
    from dropscribe.transcript import Transcriber, Transcript
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings
    from dropscribe.vocab.states import JobKey

log = structlog.get_logger("dropscribe")


class Uploader:
    def __init__(
        self,
        ledger: Ledger,
        clients: dict[str, Transcriber],
        abort: threading.Event,
        *,
        wait_for_endpoints: bool = True,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._ledger = ledger
        self._clients = Clients(clients)
        self._abort = abort
        self._wait_for_endpoints = wait_for_endpoints
        self._jitter = jitter
        self._clock = clock
        self._limits = {name: Limiter(c.endpoint.max_concurrency) for name, c in clients.items()}
        self._breakers = {name: Breaker.of(c.endpoint) for name, c in clients.items()}
        self._lock = threading.Lock()
        self._learned = Limits(ledger)
        self._fatal: dict[str, EndpointError] = {}  # once: what made an endpoint unusable
        self._gone = Gone(ledger, clock)  # (endpoint, model) pairs no longer served

    def clients(self) -> list[Transcriber]:
        """Every client, including ones a reload replaced that uploads still use."""
        return self._clients.every()

    def client(self, name: str) -> Transcriber:
        return self._clients.get(name)

    def set_clients(self, clients: dict[str, Transcriber]) -> None:
        """Swap in a reloaded set of endpoints; unchanged ones keep their state. A changed
        one starts afresh: a pause (a bad key, say) ends, and the next upload probes it."""
        for name in self._clients.replace(clients):
            client = clients[name]
            with self._lock:
                self._limits[name] = Limiter(client.endpoint.max_concurrency)
                old = self._breakers.get(name)
                self._breakers[name] = Breaker.of(client.endpoint)
            if old is not None and old.reason is not None:
                self._metrics.paused.labels(name).set(0)
                log.warning(
                    "endpoint.reloaded", endpoint=name, action="paused no more: probing it now"
                )
        self._gone.forget()  # a reload is how a person says "try again now"

    def _sleep(self, seconds: float) -> None:
        if self._abort.wait(seconds):
            raise Abandoned

    @contextlib.contextmanager
    def _slot(self, endpoint: str, model: str) -> Iterator[None]:
        """Wait for the endpoint's breaker, the model's (if it was found gone) and one of
        the endpoint's concurrent upload slots (in ``once``, an endpoint or model found
        unusable fails the upload at once instead)."""
        while True:
            self._usable(endpoint, model)
            wait, model_probe = self._gone.wait(endpoint, model)
            if wait:
                self._sleep(min(wait, 1.0))
                continue
            with self._lock:
                breaker = self._breakers[endpoint]
                probing = breaker.probing
                wait = breaker.wait(self._clock())
                probe = breaker.probing and not probing  # this upload is the probe
            if not wait:
                break
            self._sleep(min(wait, 1.0))
        limit = self._limits[endpoint]
        try:
            self._acquire(limit)
            try:
                yield
            finally:
                limit.release()
        except BaseException:  # no verdict on the endpoint: let the next upload probe it
            self._unprobe(breaker, probe)
            if model_probe:
                self._gone.released(endpoint, model)
            raise

    def _acquire(self, lock: Limiter | threading.Lock) -> None:
        """Take ``lock``, or raise ``Abandoned`` once the daemon stops while waiting."""
        while not lock.acquire(timeout=0.25):
            if self._abort.is_set():
                raise Abandoned

    def _usable(self, endpoint: str, model: str) -> None:
        """In ``once``: raise ``Unusable`` once the endpoint (or this model on it) failed
        a file for good."""
        with self._lock:
            fatal = self._fatal.get(endpoint) or self._fatal.get(f"{endpoint}\0{model}")
        if fatal is not None:
            raise Unusable(fatal.message, status=fatal.status)

    def _unprobe(self, breaker: Breaker, probe: bool) -> None:
        if probe:
            with self._lock:
                breaker.released()

    def caps(self, endpoint: str, model: str) -> models.Caps:
        """What the model on this endpoint takes, with what its server taught us."""
        return self._learned.caps(self.client(endpoint).endpoint, model)

    @contextlib.contextmanager
    def _asking(
        self, endpoint: Endpoint, settings: FolderSettings, timed: bool, seconds: float | None
    ) -> Iterator[tuple[models.Ask, frozenset[models.Item]]]:
        """The request that fits the model now: alone (under the pair's gate) while it
        carries something the server has not confirmed yet. ``Replan`` when what was
        learned meanwhile means the file cannot go as planned."""
        caps, known = self._learned.known(endpoint, settings.model)
        ask = self._ask(endpoint, settings, caps, timed, seconds)
        if set(ask.items()) <= known:
            yield ask, known
            return
        gate = self._learned.gate(endpoint, settings.model)
        self._acquire(gate)
        try:  # what the request before us learned counts
            caps, known = self._learned.known(endpoint, settings.model)
            yield self._ask(endpoint, settings, caps, timed, seconds), known
        finally:
            gate.release()

    @staticmethod
    def _ask(
        endpoint: Endpoint,
        settings: FolderSettings,
        caps: models.Caps,
        timed: bool,
        seconds: float | None,
    ) -> models.Ask:
        if (timed and caps.timed is None) or not models.fits(caps, seconds):
            raise Replan("the model no longer takes this file as planned")
        try:
            return models.ask(
                caps,
                timed=timed,
                prompt=bool(settings.prompt),
                seconds=seconds,
                language=bool(settings.language),
            )
        except models.NothingToAsk:
            tried = ", ".join(models.of(endpoint, settings.model).formats)
            raise EndpointError(
                f"model {settings.model!r} on endpoint {endpoint.name!r} refused every"
                f" response_format it might take ({tried}); state what it takes under"
                f" endpoints.{endpoint.name}.models, or use another model"
            ) from None

    def _send(
        self,
        endpoint: str,
        path: Path,
        settings: FolderSettings,
        ask: models.Ask,
        attempt: int,
        size: int,
        name: str | None,
    ) -> tuple[Transcript | TranscriptionError, float, bool]:
        """One request with the endpoint's client as it is now; its answer, or what went
        wrong, how long it took, and whether a reload has replaced that client since."""
        with self._clients.using(endpoint) as client:
            log.info(
                "upload.started",
                endpoint=endpoint,
                model=settings.model,
                attempt=attempt,
                bytes=size,
                response_format=ask.response_format,
            )
            started = time.monotonic()
            result: Transcript | TranscriptionError
            try:
                result = client.transcribe(path, settings, ask, name=name)
            except TranscriptionError as exc:
                result = exc
            except OSError as exc:
                result = PermanentError(f"cannot read file: {exc.strerror or exc}")
            stale = not self._clients.is_current(client)
        elapsed = time.monotonic() - started
        status = result.status if isinstance(result, TranscriptionError) else 200
        self._metrics.uploaded(endpoint, status, elapsed, size)
        return result, elapsed, stale

    def _refused(
        self, endpoint: Endpoint, model: str, failure: TranscriptionError, ask: models.Ask
    ) -> bool:
        """Whether ``failure`` refuses a choice of ``ask`` by name; if so, it is learned."""
        item = models.refusal(failure.status, failure.param, failure.message, ask)
        if item is None or item.param in kinds.UNSENT.get(endpoint.kind, ()):
            return False
        log.warning(
            "upload.refused",
            status=failure.status,
            error=failure.message,
            request_id=failure.request_id,
        )
        self._learned.learn(endpoint, model, item, failure.message)
        self._succeeded(endpoint.name)  # it answered: the endpoint is well
        return True

    def upload(
        self,
        path: Path,
        settings: FolderSettings,
        key: JobKey,
        attempt: int,
        size: int,
        *,
        seconds: float | None = None,
        timed: bool | None = None,
        name: str | None = None,
    ) -> Transcript:
        """Upload until it works, the attempts run out, or the failure is the file's.

        ``seconds`` is the audio's length when known; ``timed``, whether the answer must
        carry timestamps (by default: whether a sidecar needs them). A refusal that names
        a choice of the request is learned, and the file sent again without it in the
        same attempt; ``Replan`` when it can no longer be sent as planned. ``name`` is
        the file name the server is told (``path``'s by default)."""
        want_timed = settings.timed if timed is None else timed
        outages = 0  # in a row, in this attempt
        while True:
            if self._abort.is_set():
                raise Abandoned
            elapsed = 0.0
            endpoint = self.client(settings.endpoint).endpoint
            try:
                with self._slot(settings.endpoint, settings.model):
                    endpoint = self.client(settings.endpoint).endpoint  # as a reload left it
                    with self._asking(endpoint, settings, want_timed, seconds) as (ask, known):
                        # a request before ours may have found out
                        self._usable(endpoint.name, settings.model)
                        outcome, elapsed, stale = self._send(
                            endpoint.name, path, settings, ask, attempt, size, name
                        )
                        if isinstance(outcome, TranscriptionError) and stale:
                            continue  # sent as the config was before a reload: send it again
                        if isinstance(outcome, EndpointError) and not self._wait_for_endpoints:
                            gone = isinstance(outcome, ModelGone)
                            at = f"{endpoint.name}\0{settings.model}" if gone else endpoint.name
                            with self._lock:  # every later file of this endpoint fails at once
                                self._fatal.setdefault(at, outcome)
                        if not isinstance(outcome, TranscriptionError):
                            self._learned.confirm(endpoint, settings.model, ask, known)
                        elif self._refused(endpoint, settings.model, outcome, ask):
                            # The same file in the same attempt, without what was refused;
                            # _asking raises Replan if it can no longer go as planned.
                            continue
            except Unusable:  # once: already said, for an earlier file
                raise
            except EndpointError as exc:  # nothing left to ask of the model
                outcome = exc
            except Replan:  # this attempt sent nothing the file is to blame for
                self._ledger.start_attempt(key, settings.shaping(), attempt - 1)
                raise
            ms = round(elapsed * 1000)
            if not isinstance(outcome, TranscriptionError):
                self._succeeded(endpoint.name)
                self._gone.succeeded(endpoint, settings.model)
                log.info(
                    "upload.finished",
                    status=200,
                    ms=ms,
                    bytes=size,
                    request_id=outcome.request_id,
                    attempt=attempt,
                )
                return outcome
            outages = outages + 1 if isinstance(outcome, RetryableError) and outcome.outage else 0
            if self._settle(endpoint, settings.model, outcome, key, attempt, ms, outages):
                continue  # not the file's fault: same attempt once the endpoint is back
            attempt += 1
            self._ledger.start_attempt(key, settings.shaping(), attempt)

    def _settle(
        self,
        endpoint: Endpoint,
        model: str,
        failure: TranscriptionError,
        key: JobKey,
        attempt: int,
        ms: int,
        outages: int,
    ) -> bool:
        """After a failed upload: True to try again in the same attempt (the endpoint was
        at fault: paused, or down), False after waiting for the next; raises when the
        file is given up. An outage (``outages`` in a row) costs the file no attempt,
        except in ``once``, which must end."""
        log.warning(
            "upload.failed",
            status=failure.status,
            error=failure.message,
            ms=ms,
            request_id=failure.request_id,
            attempt=attempt,
            retryable=isinstance(failure, RetryableError),
        )
        if isinstance(failure, ModelGone):  # the pair waits in _slot, attempts untouched
            self._gone.failed(endpoint, model, failure)
            self._succeeded(endpoint.name)  # it answered: the endpoint is well
            if not self._wait_for_endpoints:
                raise failure
            return True
        if isinstance(failure, EndpointError):
            self._failed(endpoint.name, failure, at_once=True)
            if not self._wait_for_endpoints:
                raise failure
            return True
        if isinstance(failure, RetryableError):
            self._failed(endpoint.name, failure)
            if failure.status == 429:
                self._throttled(endpoint.name)
            if failure.outage and self._wait_for_endpoints:
                self._ledger.job_failed(
                    key, failure.message, failure.status, failure.request_id, JobState.RETRYING
                )
                wait = backoff.delay(
                    outages - 1, endpoint.backoff_max, self._jitter(), failure.retry_after
                )
                log.info("upload.retrying", in_seconds=round(wait, 3), attempt=attempt, outage=True)
                self._sleep(wait)
                self._metrics.retries.labels(endpoint.name).inc()
                return True
        elif failure.status is not None:
            self._succeeded(endpoint.name)  # it answered: alive, the file is at fault
        else:
            with self._lock:
                self._breakers[endpoint.name].released()
        last = not isinstance(failure, RetryableError) or attempt >= endpoint.max_attempts
        state = JobState.FAILED if last else JobState.RETRYING
        self._ledger.job_failed(key, failure.message, failure.status, failure.request_id, state)
        if last:
            failure.attempts = attempt
            raise failure
        wait = backoff.delay(attempt - 1, endpoint.backoff_max, self._jitter(), failure.retry_after)
        log.info("upload.retrying", in_seconds=round(wait, 3), attempt=attempt)
        self._sleep(wait)
        self._metrics.retries.labels(endpoint.name).inc()
        return False

    def _throttled(self, endpoint: str) -> None:
        limit = self._limits[endpoint].throttled()
        if limit is not None:
            log.warning(
                "endpoint.concurrency", endpoint=endpoint, limit=limit, reason="rate limited (429)"
            )

    def _succeeded(self, endpoint: str) -> None:
        raised = self._limits[endpoint].succeeded()
        if raised is not None:
            log.info(
                "endpoint.concurrency", endpoint=endpoint, limit=raised, reason="ramping back up"
            )
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
            log.error(
                "endpoint.paused",
                endpoint=endpoint,
                seconds=round(pause, 1),
                reason=failure.message,
                status=failure.status,
                action="uploads to it wait; a probe is sent when the pause ends",
            )

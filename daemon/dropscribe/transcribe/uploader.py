"""One file's upload with the retry policy, waiting on its endpoint's health.

Retryable failures are tried again after the backoff (never sooner than the
server asked); an endpoint that keeps failing, or cannot serve anyone (bad key,
unknown model, exhausted quota), is paused as a whole, and uploads wait for it
instead of using up their attempts. The bookkeeping of each endpoint's breaker and
concurrency limit is ``health``'s; the waiting and the retrying are here.
"""

from __future__ import annotations

import contextlib
import random
import time
from typing import TYPE_CHECKING

import structlog

from dropscribe.errors import (
    Abandoned,
    EndpointError,
    EndpointRuledOut,
    EndpointWaits,
    ModelGone,
    PermanentError,
    Replan,
    RetryableError,
    TranscriptionError,
)
from dropscribe.ops.metrics import Metrics
from dropscribe.transcribe import backoff, fallback, kinds, models, refusals
from dropscribe.transcribe.clients import Clients
from dropscribe.transcribe.gone import Gone
from dropscribe.transcribe.health import Health
from dropscribe.transcribe.limits import Limits
from dropscribe.vocab.states import JobState

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from dropscribe.ledger.interface import UploadLedger
    from dropscribe.transcribe.board import Board
    from dropscribe.transcribe.limiter import Limiter
    from dropscribe.transcript import Transcriber, Transcript
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings
    from dropscribe.vocab.states import JobKey

log = structlog.get_logger("dropscribe")


class Uploader:
    def __init__(
        self,
        ledger: UploadLedger,
        clients: dict[str, Transcriber],
        abort: threading.Event,
        *,
        wait_for_endpoints: bool = True,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
        board: Board | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._ledger = ledger
        self._clients = Clients(clients)
        self._abort = abort
        self._wait_for_endpoints = wait_for_endpoints
        self._jitter = jitter
        self._clock = clock
        endpoints = {name: client.endpoint for name, client in clients.items()}
        self._health = Health(endpoints, self._metrics, clock, board)
        self._learned = Limits(ledger)
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
            self._health.replace(name, clients[name].endpoint)
        self._gone.forget()  # a reload is how a person says "try again now"

    def _sleep(self, seconds: float) -> None:
        if self._abort.wait(seconds):
            raise Abandoned

    @contextlib.contextmanager
    def _slot(self, endpoint: str, model: str) -> Iterator[None]:
        """Wait for the endpoint's breaker (not an outage's pause in ``once``), a gone model's
        and a concurrent upload slot; in ``once``, an unusable endpoint or model fails at once."""
        while True:
            self._health.usable(endpoint, model)
            wait, model_probe = self._gone.wait(endpoint, model)
            if wait:
                fallback.waiting(endpoint, "gone", f"model {model!r} is not served there", wait)
                self._sleep(min(wait, 1.0))
                continue
            wait, breaker, probe = self._health.breaker(endpoint)  # probe: this upload is it
            if not wait:
                break
            fallback.waiting(endpoint, "paused", breaker.reason or "paused after failures", wait)
            if breaker.held and wait > backoff.SLEPT_IN_PLACE:  # hostile14b: free the worker
                said, until = f"endpoint {endpoint} is paused: {breaker.reason}", time.time() + wait
                raise EndpointWaits(f"waiting: {said}", until=until)  # wake15: tried again then
            if not (self._wait_for_endpoints or breaker.held):  # a pause asked for is waited
                break  # outage20, once21: once counts failures to its end, never waits them out
            self._sleep(min(wait, 1.0))
        limit = self._health.limiter(endpoint)
        try:
            self._acquire(limit)
            try:
                yield
            finally:
                limit.release()
        except BaseException:  # no verdict on the endpoint: let the next upload probe it
            self._health.unprobe(breaker, probe)
            if model_probe:
                self._gone.released(endpoint, model)
            raise

    def _acquire(self, lock: Limiter | threading.Lock) -> None:
        """Take ``lock``; ``Abandoned`` once the daemon stops, even as it is had (uploads19)."""
        while not lock.acquire(timeout=0.25):
            if self._abort.is_set():
                raise Abandoned
        if self._abort.is_set():
            lock.release()
            raise Abandoned

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
                paced=settings.paced and timed == settings.timed,  # unless times are had here
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
        item = refusals.refusal(failure.status, failure.param, failure.message, ask)
        if item is None or item.param in kinds.UNSENT.get(endpoint.kind, ()):
            return False
        log.warning(
            "upload.refused",
            status=failure.status,
            error=failure.message,
            request_id=failure.request_id,
        )
        self._learned.learn(endpoint, model, item, failure.message)
        self._health.succeeded(endpoint.name)  # it answered: the endpoint is well
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
        outages, first = 0, attempt  # in a row, in this attempt; the attempt it came with
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
                        self._health.usable(endpoint.name, settings.model)
                        outcome, elapsed, stale = self._send(
                            endpoint.name, path, settings, ask, attempt, size, name
                        )
                        if isinstance(outcome, TranscriptionError) and stale:
                            continue  # sent as the config was before a reload: send it again
                        if isinstance(outcome, EndpointError) and not self._wait_for_endpoints:
                            self._health.rule_out(endpoint.name, settings.model, outcome)
                        if not isinstance(outcome, TranscriptionError):
                            self._learned.confirm(endpoint, settings.model, ask, known)
                        elif self._refused(endpoint, settings.model, outcome, ask):
                            # The same file in the same attempt, without what was refused;
                            # _asking raises Replan if it can no longer go as planned.
                            continue
            except (EndpointRuledOut, EndpointWaits, Replan) as exc:  # said, paused, replanned
                # nothing sent; once21: what failed on a ruled-out endpoint was not the file's
                given = first if isinstance(exc, EndpointRuledOut) else attempt
                self._ledger.start_attempt(key, settings.shaping(), given - 1)
                raise
            except EndpointError as exc:  # nothing left to ask of the model
                outcome = exc
            ms = round(elapsed * 1000)
            if not isinstance(outcome, TranscriptionError):
                self._health.succeeded(endpoint.name)
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
            try:
                if self._settle(endpoint, settings.model, outcome, key, attempt, ms, outages):
                    continue  # not the file's fault: same attempt once the endpoint is back
            except EndpointError:  # once: the endpoint's fault (unreachable, a bad key) is
                self._ledger.start_attempt(key, settings.shaping(), first - 1)  # not the file's
                raise
            attempt += 1
            self._ledger.start_attempt(key, settings.shaping(), attempt)

    def _held(self, endpoint: str, failure: RetryableError) -> None:
        """hostile14b: a long 429 Retry-After pauses the endpoint; the worker is freed."""
        pause = failure.retry_after or 0.0
        if failure.status == 429 and pause > backoff.SLEPT_IN_PLACE:
            said = f"it asked for a pause of {pause:.0f} s (429 Retry-After): {failure.message}"
            self._health.hold(endpoint, pause, said, 429)
            said, until = f"endpoint {endpoint} is paused: {said}", time.time() + pause  # wake15
            raise EndpointWaits(f"waiting: {said}", status=429, until=until)

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
        file is given up. An outage costs the file no attempt, except in ``once``, which must
        end: ``max_attempts`` in a row, this file's or the endpoint's, rule the endpoint out."""
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
            self._health.succeeded(endpoint.name)  # it answered: the endpoint is well
            fallback.failed(endpoint.name, failure)  # another endpoint may take the file
            if not self._wait_for_endpoints:
                raise failure
            return True
        if isinstance(failure, EndpointError):
            self._health.failed(endpoint.name, failure, at_once=True)
            fallback.failed(endpoint.name, failure)
            if not self._wait_for_endpoints:
                raise failure
            return True
        if isinstance(failure, RetryableError):
            row = max(outages, self._health.failed(endpoint.name, failure, who=key.digest))
            if failure.status == 429:
                self._health.throttled(endpoint.name)
            # fallback34c: no answer within timeout: (a slow endpoint) is outage-like too
            slow = failure.status is None and ms + 1 >= endpoint.timeout * 1000
            if failure.outage or slow:
                fallback.failed(endpoint.name, failure, slow=slow)
            self._held(endpoint.name, failure)
            if not self._wait_for_endpoints:  # once21: is it down for once? (then raises)
                self._health.down(endpoint, model, failure, row if failure.outage else 0)
            if failure.outage:  # in once, a few times (above), then the file stays
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
            self._health.succeeded(endpoint.name)  # it answered: alive, the file is at fault
        else:
            self._health.released(endpoint.name)
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

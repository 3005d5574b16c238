"""The policy around one chat endpoint, as uploads have it: a slot from the adaptive
limiter (halved on 429), the breaker (an endpoint that keeps failing is paused, and a
paused one fails a step at once: the step waits, no worker does), retries with backoff
that honour Retry-After, and learned refusals (``max_tokens`` refused: the model wants
``max_completion_tokens``; ``temperature`` refused: none is sent), kept in the ledger's
capabilities so a restart does not learn them again. leftovers21: a refusal lapses as an
upload's does (``transcribe/limits.py``), a day after it was last said: the next request
asks again (one request, if the model still refuses), so a gateway whose model name now
names another model, or one odd answer, is not a downgrade for good. The ledger is read
at each request, so a daemon running for days lets go of it too."""

from __future__ import annotations

import random
import threading
import time
from typing import TYPE_CHECKING, Any

import structlog

from dropscribe.errors import EndpointError, OutageError, RetryableError, TranscriptionError
from dropscribe.steps.chat import Answer, ChatClient
from dropscribe.transcribe.backoff import delay
from dropscribe.transcribe.breaker import Breaker
from dropscribe.transcribe.limiter import Limiter
from dropscribe.transcribe.limits import lapsed

if TYPE_CHECKING:
    from collections.abc import Callable

    from dropscribe.ledger.interface import Capabilities
    from dropscribe.vocab.endpoints import Endpoint

log = structlog.get_logger("dropscribe")

TEMPERATURE = 0.2
REFUSED = "refused"


class Paused(OutageError):  # noqa: N818 - named for what the endpoint is
    """The endpoint's breaker is open: the step is due again when it closes."""


class Caller:
    """Completions on one chat endpoint, for every step thread."""

    def __init__(
        self,
        endpoint: Endpoint,
        ledger: Capabilities,
        abort: threading.Event,
        *,
        client: ChatClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.client = client or ChatClient(endpoint)
        self._ledger = ledger
        self._abort = abort
        self._clock = clock
        self.breaker = Breaker.of(endpoint)
        self._guard = threading.Lock()
        self.limiter = Limiter(endpoint.max_concurrency)

    def close(self) -> None:
        self.client.close()

    @property
    def ledger(self) -> Capabilities:
        """Where what the endpoint's models take is kept."""
        return self._ledger

    def refused(self, model: str) -> set[tuple[str, str]]:
        """What ``model`` refused (param, value), said within the last day."""
        rows = self._ledger.capabilities(self.endpoint.name, model, lapsed())
        return {(p, v) for p, v, verdict in rows if verdict == REFUSED}

    def body(self, model: str, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
        """The request as this model takes it (what it refused before is left out)."""
        refused = self.refused(model)
        body: dict[str, Any] = {"model": model, "messages": messages}
        limit = "max_completion_tokens" if ("max_tokens", "*") in refused else "max_tokens"
        body[limit] = max_tokens
        if ("temperature", str(TEMPERATURE)) not in refused:
            body["temperature"] = TEMPERATURE
        return body

    def complete(self, model: str, messages: list[dict[str, str]], max_tokens: int) -> Answer:
        """One completion, retried as uploads are; raises what no retry mended."""
        retries = 0
        learned = 0
        while True:
            with self._guard:
                wait = self.breaker.wait(self._clock())
            if wait > 0:
                raise Paused(
                    f"endpoint {self.endpoint.name!r} is paused: {self.breaker.reason}",
                    retry_after=wait,
                )
            if not self.limiter.acquire(self.endpoint.timeout):
                raise RetryableError(f"no free slot on endpoint {self.endpoint.name!r}")
            try:
                answer = self.client.complete(self.body(model, messages, max_tokens))
            except TranscriptionError as exc:
                if learned < 2 and self._learn(model, exc):
                    learned += 1
                    with self._guard:
                        self.breaker.released()
                    continue
                self._failed(exc)
                if not (exc.retryable and retries + 1 < self.endpoint.max_attempts):
                    raise
                wait = delay(retries, self.endpoint.backoff_max, random.random(), exc.retry_after)  # noqa: S311 - jitter
                if wait > self.endpoint.backoff_max:  # a server's long Retry-After: the
                    raise  # step waits in the ledger (its next_at), never in the step thread
                log.info(
                    "step.retrying",
                    endpoint=self.endpoint.name,
                    error=exc.message,
                    wait=round(wait, 2),
                )
                retries += 1
                if self._abort.wait(wait):
                    raise
                continue
            finally:
                self.limiter.release()
            with self._guard:
                if self.breaker.succeeded():
                    log.info("endpoint.resumed", endpoint=self.endpoint.name)
            self.limiter.succeeded()
            return answer

    def _failed(self, exc: TranscriptionError) -> None:
        if exc.status == 429:
            self.limiter.throttled()
        if not (exc.retryable or isinstance(exc, EndpointError)):
            with self._guard:
                self.breaker.released()
            return
        with self._guard:
            paused = self.breaker.failed(
                self._clock(), exc.message, at_once=isinstance(exc, EndpointError)
            )
        if paused is not None:
            log.warning(
                "endpoint.paused", endpoint=self.endpoint.name, seconds=paused, reason=exc.message
            )

    def _learn(self, model: str, exc: TranscriptionError) -> bool:
        """A 400 refusing ``max_tokens`` or ``temperature``: learned (and kept); True when
        the request can be sent again without it."""
        if exc.status != 400:
            return False
        said = f"{exc.param or ''} {exc.message}".lower()
        if "max_tokens" in said and "max_completion_tokens" not in (exc.param or ""):
            found = ("max_tokens", "*")
        elif "temperature" in said:
            found = ("temperature", str(TEMPERATURE))
        else:
            return False
        if found in self.refused(model):
            return False
        self._ledger.record_capability(
            self.endpoint.name, model, *found, REFUSED, exc.message[:300]
        )
        log.info(
            "chat.learned",
            endpoint=self.endpoint.name,
            model=model,
            refused=found[0],
            reason=exc.message,
        )
        return True

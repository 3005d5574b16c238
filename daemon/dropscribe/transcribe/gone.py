"""Models an endpoint no longer serves: their files wait, loudly, without a retry loop.

A model that is shut down (OpenAI's 404 ``model_not_found`` after the date) or
withdrawn (a gateway's ``503 no available channels for model whisper-1``) will not
come back in seconds, and it is the (endpoint, model) pair that is gone, not the
endpoint: other models on it go on. The pair is paused for an hour; one upload
probes it then (and at once after a reload, which is how a person says "I changed
something"); ``model.gone`` is said once, with the server's words and what to do,
and the ledger keeps it for ``status`` until the model answers again.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import structlog

from dropscribe.transcribe.breaker import Breaker
from dropscribe.transcribe.limits import where

if TYPE_CHECKING:
    from collections.abc import Callable

    from dropscribe.errors import TranscriptionError
    from dropscribe.ledger.interface import Capabilities, CapabilityReport
    from dropscribe.vocab.endpoints import Endpoint

log = structlog.get_logger("dropscribe")

PROBE_SECONDS = 3600.0
GONE = "gone"  # the capabilities row's verdict while the model is gone
BACK = "back"
ROW = ("model", "served")  # its param and value


class Gone:
    """Thread-safe: one breaker per (endpoint, model) pair found gone."""

    def __init__(self, ledger: Capabilities, clock: Callable[[], float] = time.monotonic) -> None:
        self._ledger = ledger
        self._clock = clock
        self._pairs: dict[tuple[str, str], Breaker] = {}
        self._lock = threading.Lock()

    def wait(self, endpoint: str, model: str) -> tuple[float, bool]:
        """Seconds to wait before sending to the pair (0: go), and whether this upload
        is the pair's probe."""
        with self._lock:
            breaker = self._pairs.get((endpoint, model))
            if breaker is None:
                return 0.0, False
            before = breaker.probing
            wait = breaker.wait(self._clock())
            return wait, breaker.probing and not before

    def released(self, endpoint: str, model: str) -> None:
        """The probe ended without a verdict on the model: the next upload probes it."""
        with self._lock:
            if (breaker := self._pairs.get((endpoint, model))) is not None:
                breaker.released()

    def failed(self, endpoint: Endpoint, model: str, failure: TranscriptionError) -> None:
        """The server says the model is gone: pause the pair (said once, kept)."""
        with self._lock:
            breaker = self._pairs.setdefault(
                (endpoint.name, model),
                Breaker(threshold=1, cooldown=PROBE_SECONDS, max_cooldown=PROBE_SECONDS),
            )
            new = breaker.reason is None
            breaker.failed(self._clock(), failure.message)
        if not new:
            log.info("model.still_gone", endpoint=endpoint.name, model=model)
            return
        self._ledger.record_capability(where(endpoint), model, *ROW, GONE, failure.message)
        log.error(
            "model.gone",
            endpoint=endpoint.name,
            model=model,
            status=failure.status,
            error=failure.message,
            action=(
                "its files wait in place (tried again hourly, and at once after a reload);"
                f" set model: to one that endpoint {endpoint.name!r} serves, and reload"
            ),
        )

    def succeeded(self, endpoint: Endpoint, model: str) -> None:
        """The model answered: whatever was gone is back."""
        with self._lock:
            breaker = self._pairs.pop((endpoint.name, model), None)
        if breaker is not None and breaker.reason is not None:
            self._ledger.record_capability(where(endpoint), model, *ROW, BACK, None)
            log.warning("model.back", endpoint=endpoint.name, model=model)

    def forget(self) -> None:
        """After a reload: every gone pair is probed at once."""
        with self._lock:
            for breaker in self._pairs.values():
                breaker.paused_until = 0.0


def gone_rows(ledger: CapabilityReport) -> list[tuple[str, str, str | None]]:
    """(server, model, the server's words) for every pair the ledger holds as gone."""
    return [
        (server, model, reason)
        for server, model, param, value, reason in ledger.capabilities_with(GONE)
        if (param, value) == ROW
    ]

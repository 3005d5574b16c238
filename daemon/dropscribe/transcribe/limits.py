"""What each (endpoint, model) pair was seen to take, kept in the ledger across restarts.

A request's choices (``models.Ask``) are confirmed by a 200 and refused by a 400
that names one of them; a refusal holds for a day from when it was last said
(``queries.REFUSAL_HOLDS_SECONDS``), then the pair is asked again. Until every
choice of a request is confirmed, requests of that pair go one at a time
(``gate``), so that a refusal costs one request, not one per worker; once they
are, the gate is never taken again.

A verdict comes with an answer, often a paid transcript, so writing it never fails
the request: one the ledger cannot take (a full state_dir) is kept in memory for this
process, said once (``ledger.write_failed``), and written with the next one that is.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import structlog

from dropscribe.errors import LedgerGaveUp
from dropscribe.ledger.interface import WRITE_FAILED
from dropscribe.ledger.queries import REFUSAL_HOLDS_SECONDS
from dropscribe.transcribe import models

if TYPE_CHECKING:
    from dropscribe.ledger.interface import Capabilities, CapabilityReport
    from dropscribe.vocab.endpoints import Endpoint

# (server, model, param, value) -> (verdict, reason)
_Verdicts = dict[tuple[str, str, str, str], tuple[str, str | None]]

log = structlog.get_logger("dropscribe")

OK = "ok"
REFUSED = "refused"


def where(endpoint: Endpoint) -> str:
    """The server a fact is about: facts survive renaming an endpoint, not moving it."""
    return f"{endpoint.kind} {endpoint.base_url}"


class Limits:
    """Thread-safe; every process reads the same ledger."""

    def __init__(self, ledger: Capabilities) -> None:
        self._ledger = ledger
        self._gates: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self._unsaved: _Verdicts = {}  # what the ledger could not take yet

    def known(self, endpoint: Endpoint, model: str) -> tuple[models.Caps, frozenset[models.Item]]:
        """The pair's capabilities (table, config, then refusals) and its confirmed items."""
        server = where(endpoint)
        rows = self._ledger.capabilities(server, model, lapsed())
        with self._guard:
            kept = [
                (k[2], k[3], v[0]) for k, v in self._unsaved.items() if k[:2] == (server, model)
            ]
        rows = [*rows, *kept]
        refused = [models.Item(p, v) for p, v, verdict in rows if verdict == REFUSED]
        confirmed = frozenset(models.Item(p, v) for p, v, verdict in rows if verdict == OK)
        return models.learned(models.of(endpoint, model), refused), confirmed

    def caps(self, endpoint: Endpoint, model: str) -> models.Caps:
        return self.known(endpoint, model)[0]

    def gate(self, endpoint: Endpoint, model: str) -> threading.Lock:
        """Held by the one request that tries something not yet confirmed."""
        with self._guard:
            return self._gates.setdefault((where(endpoint), model), threading.Lock())

    def confirm(
        self, endpoint: Endpoint, model: str, ask: models.Ask, known: frozenset[models.Item]
    ) -> None:
        """A 200 to ``ask``: its choices are what the pair takes."""
        self._record(endpoint, model, [(i, OK, None) for i in ask.items() if i not in known])

    def learn(self, endpoint: Endpoint, model: str, item: models.Item, reason: str) -> None:
        """A refusal: kept, so no request of this pair carries ``item`` again."""
        self._record(endpoint, model, [(item, REFUSED, reason)])
        log.warning(
            "endpoint.learned",
            endpoint=endpoint.name,
            model=model,
            param=item.param,
            value=item.value,
            reason=reason,
            action="sending the same file again without it",
        )

    def _record(
        self,
        endpoint: Endpoint,
        model: str,
        verdicts: list[tuple[models.Item, str, str | None]],
    ) -> None:
        """Keep verdicts: durable when this returns, or in memory when the ledger cannot
        take them (never raised: the answer they came with is worth more than a row)."""
        if not verdicts:
            return
        with self._guard:
            for item, verdict, reason in verdicts:
                fact = (where(endpoint), model, item.param, item.value)
                if self._unsaved.get(fact, (OK, None))[0] != REFUSED:  # as the ledger's rule
                    self._unsaved[fact] = verdict, reason
            unsaved = dict(self._unsaved)
        for (server, model_, param, value), (verdict_, reason_) in unsaved.items():
            try:
                self._ledger.record_capability(server, model_, param, value, verdict_, reason_)
            except WRITE_FAILED as exc:  # a stopping daemon's (LedgerGaveUp): no fault
                said = log.warning if isinstance(exc, LedgerGaveUp) else log.error
                said(
                    "ledger.write_failed",
                    error=str(exc),
                    ledger=self._ledger.where,
                    kept="capability",
                    will_retry=True,
                    action="what the endpoint took or refused is kept in memory and"
                    " written with the next one",
                )
                return
            with self._guard:
                if self._unsaved.get((server, model_, param, value)) == (verdict_, reason_):
                    del self._unsaved[server, model_, param, value]


def refusals(ledger: CapabilityReport) -> list[tuple[str, str, str, str, str | None]]:
    """Every refusal in force: (server, model, param, value, reason), for ``status``."""
    return ledger.capabilities_with(REFUSED, lapsed())


def lapsed() -> float:
    """When a refusal said before now has lapsed: the pair is asked again (one request,
    through ``gate``), so a server that was upgraded, or one odd answer, is not a
    downgrade for good; a refusal said again holds another day."""
    return time.time() - REFUSAL_HOLDS_SECONDS

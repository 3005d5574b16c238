"""Routing by price and deadline (``route:``, ``deadline:``; the decision is
``vocab/route.py``'s), the job's side: each endpoint's price (``transcribe/prices.py``),
its real-time factor measured from the ledger's history of the last week (``spend``:
wall seconds per audio second of the requests it answered), and the folder's backlog
(its files the ledger holds unfinished)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import structlog

from dropscribe.errors import LedgerError
from dropscribe.transcribe import prices
from dropscribe.vocab.route import Option, ordered
from dropscribe.vocab.states import FileState

if TYPE_CHECKING:
    from dropscribe.audio.probe import Probe
    from dropscribe.jobs.job import Job
    from dropscribe.ledger.interface import JobLedger
    from dropscribe.transcribe.uploader import Uploader

log = structlog.get_logger("dropscribe")

HISTORY_SECONDS = 7 * 86400.0  # speeds measured over the last week
WAITING = (FileState.UPLOADING, FileState.ERROR)  # a folder's files not yet done


class Router:
    """Orders a folder's list of endpoints for one file, as its ``route:`` says."""

    def __init__(self, ledger: JobLedger, uploader: Uploader) -> None:
        self._ledger = ledger
        self._uploader = uploader

    def routed(self, job: Job, found: Probe, chain: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """``chain`` in the order this file tries it."""
        settings = job.settings
        if settings.route == "in_order":
            return chain
        try:
            factors = self._ledger.spend_speeds(time.time() - HISTORY_SECONDS)
            counts = self._ledger.inbox_counts()
        except LedgerError as exc:  # no history to go by: the list as written
            log.warning("route.unknown", error=str(exc), action="the list is tried in order")
            return chain
        waiting = sum(counts.get((job.inbox.name, state), 0) for state in WAITING)
        options = []
        for endpoint, model in chain:
            where = self._uploader.client(endpoint).endpoint
            options.append(
                Option(
                    endpoint,
                    model,
                    prices.per_hour(where, model),
                    factors.get(endpoint),
                    where.max_concurrency,
                )
            )
        seconds = found.duration or 0.0
        route = ordered(options, settings.route, settings.deadline, seconds, waiting)
        log.debug("route.chosen", route=settings.route, order=[name for name, _ in route])
        return route

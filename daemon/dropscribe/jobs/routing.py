"""Routing by price and deadline (``route:``, ``deadline:``; the decision is
``vocab/route.py``'s), the job's side: each endpoint's price (``transcribe/prices.py``),
its real-time factor measured from the ledger's history of the last week (``spend``:
wall seconds per audio second of the requests it answered), the work under way on it
(its requests reserved and not yet answered, every folder's and host's), and the
folder's backlog: the files of its inbox queued behind this one when it was handed to a
worker, and the time left until this file's deadline (``deadline:`` after it settled)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import structlog

from dropscribe.errors import LedgerError
from dropscribe.transcribe import prices
from dropscribe.vocab.route import Backlog, Option, ordered, under_way

if TYPE_CHECKING:
    from collections.abc import Callable

    from dropscribe.audio.probe import Probe
    from dropscribe.jobs.job import Job
    from dropscribe.ledger.interface import JobLedger
    from dropscribe.transcribe.uploader import Uploader

log = structlog.get_logger("dropscribe")

HISTORY_SECONDS = 7 * 86400.0  # speeds measured over the last week
# Planned to be done a tenth early: the speeds measure the requests only, not a file's
# probing, ledger writes and sidecars, nor the files of other folders on the same workers
SLACK = 0.9
FLIGHT_SECONDS = 86400.0  # requests reserved longer ago are not under way any more


class Router:
    """Orders a folder's list of endpoints for one file, as its ``route:`` says."""

    def __init__(
        self, ledger: JobLedger, uploader: Uploader, clock: Callable[[], float] = time.time
    ) -> None:
        self._ledger = ledger
        self._uploader = uploader
        self._clock = clock

    def routed(self, job: Job, found: Probe, chain: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """``chain`` in the order this file tries it."""
        settings = job.settings
        if settings.route == "in_order":
            return chain
        now = self._clock()
        try:
            factors = self._ledger.spend_speeds(now - HISTORY_SECONDS)
            flying = self._ledger.spend_in_flight(now - FLIGHT_SECONDS)
        except LedgerError as exc:  # no history to go by: the list as written
            log.warning("route.unknown", error=str(exc), action="the list is tried in order")
            return chain
        sent: dict[str, list[tuple[float, float]]] = {}
        for endpoint, since, seconds in flying:
            sent.setdefault(endpoint, []).append((since, seconds))
        options, busy = [], 0.0
        for endpoint, model in chain:
            where = self._uploader.client(endpoint).endpoint
            factor = factors.get(endpoint)
            due, free = under_way(sent.get(endpoint, []), factor or 0.0, where.max_concurrency, now)
            busy += due
            options.append(
                Option(
                    endpoint,
                    model,
                    prices.per_hour(where, model),
                    factor,
                    where.max_concurrency,
                    due,
                    free,
                )
            )
        backlog = None
        if settings.deadline is not None:
            file = job.file
            age = now - file.settled if file.settled else 0.0
            left = settings.deadline * SLACK - age
            backlog = Backlog(file.behind + 1, left, file.workers, busy)
        seconds = found.duration or 0.0
        route = ordered(options, settings.route, seconds, backlog)
        log.debug(
            "route.chosen",
            route=settings.route,
            order=[name for name, _ in route],
            left=backlog and round(backlog.left, 1),
            behind=job.file.behind,
        )
        return route

"""Budgets, the job's side (``budget:`` on an endpoint and on a folder, ``vocab/budget.py``).
Before a file is sent to an endpoint, the ledger reserves its estimated cost (its
duration times the endpoint's price) in the same transaction that checks it against
the endpoint's and the folder's budgets for today and this month (``ledger/spend.py``);
the reservation is committed before the request leaves. A file that would cross a
budget is not sent there: with a list of endpoints it goes on to the next
(``PassedOver``, why ``budget``), alone it waits until the period turns. Once the endpoint
answers, the reservation is settled to what the request cost: the answer's billed
length (``usage.seconds``, or its ``duration``) times the price, 0 when nothing was
billed (refused, never sent). A crash leaves it reserved: counted, never lost.

hostile14b: what is settled is at most ``DISPUTED_TIMES`` the file's length plus
``DISPUTED_SLACK`` seconds (a server may not bill a month's budget for a minute of audio:
``spend.disputed`` says both numbers), and the settled length is what the endpoint's
measured speed is worked out from (``route: fastest``), not what a header claimed."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import structlog

from dropscribe.audio.probe import LOWEST_BYTES_A_SECOND, counted
from dropscribe.errors import (
    EmptyAnswer,
    EndpointUnreachable,
    EndpointWaits,
    LedgerError,
    LedgerGaveUp,
    PassedOver,
    PermanentError,
    TranscriptionError,
)
from dropscribe.ledger import spend
from dropscribe.transcribe import prices
from dropscribe.vocab.budget import beyond, cost, periods

if TYPE_CHECKING:
    from collections.abc import Callable

    from dropscribe.audio.probe import Probe
    from dropscribe.jobs.job import Job
    from dropscribe.ledger.spend import Spends
    from dropscribe.transcribe.uploader import Uploader
    from dropscribe.transcript import Transcript
    from dropscribe.vocab.budget import Budget

log = structlog.get_logger("dropscribe")

BYTES_A_SECOND = 4000  # no duration known: a file's length guessed from 32 kbit/s
BEYOND = "over the whole budget"  # PassedOver's why: no period can ever hold the file
NO_PRICE = "no price is known"  # how PassedOver's message starts when nothing can be counted
DISPUTED_TIMES = 2.0  # hostile14b: a bill over twice the file's length (plus a minute)
DISPUTED_SLACK = 60.0  # is settled at that, and said (spend.disputed)


class Spender:
    """Reserves each request's cost before it is sent, settles it after. Thread-safe."""

    def __init__(
        self, ledger: Spends, uploader: Uploader, clock: Callable[[], float] = time.time
    ) -> None:
        self._ledger = ledger
        self._uploader = uploader
        self._clock = clock
        self._told: set[tuple[str, str, str]] = set()  # budget.reached said: once a period
        self._lock = threading.Lock()

    def paid(
        self, job: Job, found: Probe, endpoint: str, model: str, send: Callable[[], Transcript]
    ) -> Transcript:
        """``send()``'s transcript, its cost reserved before and settled after;
        ``PassedOver`` (why ``budget``, nothing sent) when it would cross a budget."""
        held, key = job.known()
        where = self._uploader.client(endpoint).endpoint
        price = prices.per_hour(where, model)
        budgets = (where.budget, job.settings.budget)
        if price is None and any(budgets):
            message = (
                f"{NO_PRICE} for model {model!r} on endpoint {endpoint!r}, so its"
                " budget cannot be counted; set price_per_hour: on the endpoint"
            )
            raise PassedOver(endpoint, "budget", message, sent=False)
        per_hour = price or 0.0
        seconds = found.duration
        if seconds is None and any(budgets):  # a budget needs the length, not a guess
            seconds = counted(job.path)
        seconds = seconds or held.size / BYTES_A_SECOND
        self._within(endpoint, job.inbox.name, budgets, cost(seconds, per_hour))
        now = self._clock()
        request = spend.Request(
            str(key),
            endpoint,
            job.inbox.name,
            str(job.path),
            cost(seconds, per_hour),
            periods(now),
            *budgets,
            seconds,
        )
        made = self._ledger.reserve_spend(request, now)
        if isinstance(made, spend.Refusal):
            self._reached(made, request)
            said, until = f"{made.scope} {made.name}: {made.limit}", turn(made.limit, now)
            raise PassedOver(endpoint, "budget", said, sent=False, until=until)  # wake15
        started = time.monotonic()
        try:
            answer = send()
        except EmptyAnswer:  # answered, and billed
            self._settle(made, request.estimate, spend.SETTLED)
            raise
        except (PassedOver, TranscriptionError) as exc:
            if _unbilled(exc):
                self._settle(made, 0.0, spend.RELEASED)
            raise  # else: it may have been billed; the reservation stands
        # attack14: a billed length of 0 or less is no length (it settled at 0, as if unbilled)
        billed = answer.duration if answer.duration and answer.duration > 0 else seconds
        longest = found.duration or held.size / LOWEST_BYTES_A_SECOND
        billed = _undisputed(endpoint, billed, longest, per_hour)
        elapsed = time.monotonic() - started
        self._settle(made, cost(billed, per_hour), spend.SETTLED, elapsed, billed)
        return answer

    def alone(
        self,
        job: Job,
        found: Probe,
        send: Callable[[], Transcript],
        *,
        once: bool,
    ) -> Transcript:
        """A folder's one endpoint: over budget, the file waits where it is for the period
        to turn, holding no worker (a worker held until midnight stopped every other
        folder's files), and is tried again at the turn (wake15; with no price there is
        no turn: at each rescan); in ``once`` it stays where it is, as for an endpoint
        that is down."""
        settings = job.settings
        try:
            return self.paid(job, found, settings.endpoint, settings.model, send)
        except PassedOver as exc:
            if exc.why == BEYOND:  # attack14: no period can ever take it
                raise PermanentError(exc.message) from None
            if once:
                raise EndpointUnreachable(exc.message) from None
            raise EndpointWaits(f"waiting: {exc.message}", until=exc.until) from None

    @staticmethod
    def _within(
        endpoint: str, folder: str, budgets: tuple[Budget | None, Budget | None], estimate: float
    ) -> None:
        """``PassedOver`` (why ``BEYOND``) when ``estimate`` alone is more than a whole
        day's or month's budget of the endpoint or the folder."""
        for scope, name, budget in (
            ("endpoint", endpoint, budgets[0]),
            ("folder", folder, budgets[1]),
        ):
            if limit := beyond(budget, estimate):
                message = (
                    f"the file's estimated cost {estimate:.4f} is more than {scope} {name}'s"
                    f" whole budget {limit}: no period can take it (raise the budget, then"
                    " dropscribe retry)"
                )
                raise PassedOver(endpoint, BEYOND, message, sent=False)

    def _settle(
        self, made: str, amount: float, state: str, elapsed: float = 0.0, seconds: float = 0.0
    ) -> None:
        try:
            self._ledger.settle_spend(made, amount, state, self._clock(), elapsed, seconds)
        except LedgerError as exc:  # the transcript is paid for: keep it
            said = log.warning if isinstance(exc, LedgerGaveUp) else log.error  # a stop's
            said("ledger.write_failed", error=str(exc), action="the estimate stays counted")

    def _reached(self, refusal: spend.Refusal, request: spend.Request) -> None:
        """``budget.reached``, once per endpoint or folder and period (in this process)."""
        daily = refusal.limit.startswith("per_day")
        period = request.periods.day if daily else request.periods.month
        with self._lock:
            if (refusal.scope, refusal.name, period) in self._told:
                return
            self._told.add((refusal.scope, refusal.name, period))
        log.warning(
            "budget.reached",
            scope=refusal.scope,
            name=refusal.name,
            endpoint=request.endpoint,
            folder=request.folder,
            limit=refusal.limit,
            period=period,
            action="files that would cross it are not sent there until the period turns"
            " (local time): the next endpoint of the list takes them, or they wait",
        )


def turn(limit: str, now: float) -> float:
    """wake15: when the period of ``limit`` (``per_day 5.00 ...``, ``per_month ...``) that
    ``now`` falls in ends: the next local midnight, or the 1st of next month at midnight
    (``time.mktime`` carries a 32nd day or a 13th month over, and finds the offset of
    that moment, daylight saving time included)."""
    local = time.localtime(now)
    if limit.startswith("per_day"):
        later = (local.tm_year, local.tm_mon, local.tm_mday + 1, 0, 0, 0, 0, 0, -1)
    else:
        later = (local.tm_year, local.tm_mon + 1, 1, 0, 0, 0, 0, 0, -1)
    return time.mktime(later)


def _unbilled(exc: Exception) -> bool:
    """Whether the failure says no work was billed: refused before it was sent, answered
    with an error, or no server reached."""
    if isinstance(exc, (PassedOver, EndpointWaits)):  # refused, down, or paused: unbilled
        return True
    assert isinstance(exc, TranscriptionError)
    return exc.status is not None or bool(getattr(exc, "outage", False))


def _undisputed(endpoint: str, billed: float, longest: float, per_hour: float) -> float:
    """The billed length to settle: at most ``DISPUTED_TIMES`` the file's ``longest``
    length plus ``DISPUTED_SLACK`` (hostile14b: a server once billed 1e7 s for a minute
    and used up a month's budget); more is said as ``spend.disputed``."""
    most = DISPUTED_TIMES * longest + DISPUTED_SLACK
    if billed <= most:
        return billed
    log.warning(
        "spend.disputed",
        endpoint=endpoint,
        billed_seconds=round(billed, 3),
        expected_seconds=round(longest, 3),
        settled_seconds=round(most, 3),
        billed_cost=round(cost(billed, per_hour), 6),
        settled_cost=round(cost(most, per_hour), 6),
        action="settled at the most the file can have cost; check the provider's bill",
    )
    return most

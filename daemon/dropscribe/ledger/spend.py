"""What requests to endpoints cost, in the ``spend`` table (``schema.LAYOUT``): a row per
request of a job's file to an endpoint, written before the request is sent (``reserved``
at the estimated cost, committed before the request leaves) and settled once it answers
(``settled`` at the actual cost, or ``released`` at 0 when nothing was billed). A crash
leaves the row reserved: spend is never unrecorded, only perhaps counted high.

A reservation checks the budgets and inserts the row in one transaction that no other
reservation can interleave with: SQLite's ``BEGIN IMMEDIATE`` (and the write turn's
``flock``, ``groupcommit.py``) across the worker processes of one state_dir,
PostgreSQL's transaction-scoped advisory lock across every host sharing the ledger. So
the spend recorded never exceeds a budget, whoever reserves it."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dropscribe.vocab.budget import Budget, Periods, Spent, crossed

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    Rows = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]

RESERVED = "reserved"  # written before the request: it may be billed
SETTLED = "settled"  # the endpoint answered: ``cost`` is what it cost
RELEASED = "released"  # nothing was billed (refused before any work, or never sent)

SPEND_LOCK = 0x7370656E  # "spen": PostgreSQL's advisory lock over every reservation

_SUM = "SELECT COALESCE(SUM(cost), 0) FROM spend WHERE {who} = ? AND {period} = ?"
_INSERT = """
INSERT INTO spend (id, key, endpoint, folder, day, month, estimate, cost, state, path, updated,
    seconds)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
# hostile14b: the settled length (billed, at most what the file can hold) replaces the
# header's for the measured speed; 0 keeps the reserved one
_SETTLE = """
UPDATE spend SET cost = ?, state = ?, updated = ?, elapsed = ?,
    seconds = CASE WHEN ? > 0 THEN ? ELSE seconds END
WHERE id = ?
"""
_SPEEDS = """
SELECT endpoint, SUM(elapsed), SUM(seconds) FROM spend
WHERE state = ? AND seconds > 0 AND elapsed > 0 AND updated > ? GROUP BY endpoint
"""
_FLIGHT = "SELECT endpoint, updated, seconds FROM spend WHERE state = ? AND updated > ?"
_TOTALS = """
SELECT endpoint, folder, SUM(CASE WHEN day = ? THEN cost ELSE 0 END),
    SUM(CASE WHEN month = ? THEN cost ELSE 0 END), SUM(cost)
FROM spend GROUP BY endpoint, folder ORDER BY endpoint, folder
"""


@dataclass(frozen=True)
class Request:
    """One request about to be sent, and the budgets it must fit in."""

    key: str
    endpoint: str
    folder: str
    path: str
    estimate: float
    periods: Periods
    endpoint_budget: Budget | None
    folder_budget: Budget | None
    seconds: float = 0.0  # the audio's length (for the measured speed: vocab/route.py)


@dataclass(frozen=True)
class Refusal:
    """Which budget the request would cross: ``scope`` endpoint or folder."""

    scope: str
    name: str
    limit: str


@dataclass(frozen=True)
class Total:
    endpoint: str
    folder: str
    today: float
    month: float
    ever: float


def spent(rows: Rows, who: str, name: str, periods: Periods) -> Spent:
    """What ``who`` (endpoint or folder) ``name`` spent in ``periods``."""
    day = rows(_SUM.format(who=who, period="day"), (name, periods.day))[0][0]
    month = rows(_SUM.format(who=who, period="month"), (name, periods.month))[0][0]
    return Spent(float(day), float(month))


def reserve(rows: Rows, request: Request, now: float) -> str | Refusal:
    """Inside the caller's exclusive transaction: the new row's id, or the budget the
    request would cross (and no row)."""
    for scope, name, budget in (
        ("endpoint", request.endpoint, request.endpoint_budget),
        ("folder", request.folder, request.folder_budget),
    ):
        if budget is None:
            continue
        limit = crossed(budget, spent(rows, scope, name, request.periods), request.estimate)
        if limit is not None:
            return Refusal(scope, name, limit)
    made = uuid.uuid4().hex
    p = request.periods
    rows(
        _INSERT,
        (
            made,
            request.key,
            request.endpoint,
            request.folder,
            p.day,
            p.month,
            request.estimate,
            request.estimate,
            RESERVED,
            request.path,
            now,
            request.seconds,
        ),
    )
    return made


def settle(
    rows: Rows, made: str, cost: float, state: str, now: float, elapsed: float, seconds: float = 0.0
) -> None:
    """The reservation ``made`` at what it cost; ``seconds``: the audio's settled length
    (billed), for the measured speed (0: the reserved length stays)."""
    rows(_SETTLE, (cost, state, now, elapsed, seconds, seconds, made))


def speeds(rows: Rows, since: float) -> dict[str, float]:
    """Each endpoint's real-time factor (wall seconds per audio second) since ``since``."""
    found = rows(_SPEEDS, (SETTLED, since))
    return {str(e): float(w) / float(a) for e, w, a in found if a}


def in_flight(rows: Rows, since: float) -> list[tuple[str, float, float]]:
    """(endpoint, reserved at, audio seconds) of each request reserved since ``since`` and
    not yet answered: the work under way, for ``route:`` (routing34b)."""
    return [(str(e), float(t), float(a or 0)) for e, t, a in rows(_FLIGHT, (RESERVED, since))]


def totals(rows: Rows, periods: Periods) -> list[Total]:
    """Spend per (endpoint, folder): today, this month, and ever (for the metric)."""
    found = rows(_TOTALS, (periods.day, periods.month))
    return [
        Total(str(e), str(f), float(d or 0), float(m or 0), float(t or 0))
        for e, f, d, m, t in found
    ]


class SpendRows:
    """The spend methods of a backend, over its ``_spend_turn`` (one exclusive
    transaction: ``fn`` gets its ``rows(sql, args)``) and ``_rows``, ``_clock``,
    ``_stored``."""

    def _spend_turn(self, fn: Callable[[Rows], Any]) -> Any:
        raise NotImplementedError

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _stored(self, path: Path | str) -> str:
        raise NotImplementedError

    def reserve_spend(self, request: Request, now: float) -> str | Refusal:
        """Check the budgets and reserve the request's estimate, durable on return."""
        stored = dataclasses.replace(request, path=self._stored(request.path))  # any name
        return self._spend_turn(lambda rows: reserve(rows, stored, now))  # type: ignore[no-any-return]

    def settle_spend(
        self,
        made: str,
        cost: float,
        state: str,
        now: float,
        elapsed: float = 0.0,
        seconds: float = 0.0,
    ) -> None:
        """The reservation ``made`` at what the request cost (durable on return)."""
        self._spend_turn(lambda rows: settle(rows, made, cost, state, now, elapsed, seconds))

    def spend_speeds(self, since: float) -> dict[str, float]:
        return speeds(self._rows, since)

    def spend_totals(self, periods: Periods) -> list[Total]:
        return totals(self._rows, periods)

    def spend_in_flight(self, since: float) -> list[tuple[str, float, float]]:
        return in_flight(self._rows, since)


class Spends(Protocol):
    """What the cascade (``jobs/spending.py``), status and the metric ask of the ledger."""

    def reserve_spend(self, request: Request, now: float) -> str | Refusal: ...

    def settle_spend(
        self,
        made: str,
        cost: float,
        state: str,
        now: float,
        elapsed: float = 0.0,
        seconds: float = 0.0,
    ) -> None: ...

    def spend_speeds(self, since: float) -> dict[str, float]: ...

    def inbox_counts(self) -> dict[tuple[str, str], int]:
        """Files by (inbox, state): a folder's backlog, for ``route:``."""
        ...

    def spend_totals(self, periods: Periods) -> list[Total]: ...

    def spend_in_flight(self, since: float) -> list[tuple[str, float, float]]: ...

"""Pure: which endpoint of a folder's list a file tries first (``route:``).

- ``in_order`` (the default): the list as written.
- ``cheapest``: the lowest price first (``price_per_hour:`` or the list price; unknown
  prices last). With ``deadline:`` (``2h``, ``30m``, ``90s`` or seconds: each file done
  within that of settling), the file goes to the cheapest endpoint that can take it with
  the folder's backlog still done in time (``fits``), so a backlog the cheapest endpoint
  alone could not finish is shared: the cheap endpoint takes what it can finish by the
  deadline, the next ones the rest; when none can, the soonest finish first.
- ``fastest``: the soonest finish first: the wait for room on the endpoint (its requests
  under way) plus the measured real-time factor (wall seconds per audio second, from
  the ledger's history) times the file's length; endpoints not yet measured keep their
  place in the list after the measured ones.

An endpoint not yet measured is taken to meet any deadline (its first files measure it)."""

from __future__ import annotations

import heapq
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

Route = Literal["in_order", "cheapest", "fastest"]
UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _spelled(value: Any) -> Any:
    """``2h``, ``30m``, ``90s``, ``1.5h`` as seconds; numbers as they are."""
    if isinstance(value, str):
        found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
        if found is None:
            raise ValueError("a duration such as 2h, 30m or 90s (or a number of seconds)")
        return float(found[1]) * UNITS.get(found[2] or "s", 1.0)
    return value


Deadline = Annotated[float, BeforeValidator(_spelled), Field(gt=0, le=365 * 86400)]


@dataclass(frozen=True)
class Option:
    """One endpoint of the list, what it costs, how fast it was and the work under way
    on it (routing34b)."""

    endpoint: str
    model: str
    price: float | None  # an audio hour
    factor: float | None  # measured wall seconds per audio second
    concurrency: int = 1
    busy: float = 0.0  # seconds of work still due on the requests under way
    free: float = 0.0  # seconds until it has room for another request


@dataclass(frozen=True)
class Backlog:
    """The file's folder's work ahead (routing34b): ``files`` not yet begun, this one
    included, the time ``left`` until the deadline, the worker threads that share the
    endpoints (0: unknown) and the seconds of work under way on all of them."""

    files: int
    left: float
    workers: int = 0
    busy: float = 0.0


def under_way(
    requests: list[tuple[float, float]], factor: float, concurrency: int, now: float
) -> tuple[float, float]:
    """(seconds of work still due, seconds until there is room) on an endpoint whose
    requests under way were sent at these times with this much audio each: they are
    served in turn, ``concurrency`` at once, each for ``factor`` times its audio."""
    ends = [-math.inf] * max(concurrency, 1)  # when each of its slots is free
    due = 0.0
    for sent, seconds in sorted(requests):
        start = max(sent, heapq.heappop(ends))
        end = start + factor * seconds
        heapq.heappush(ends, end)
        due += max(end - max(start, now), 0.0)
    return due, max(ends[0] - now, 0.0)


def finish(option: Option, seconds: float) -> float:
    """Seconds until ``option`` would finish a file of ``seconds`` sent to it now."""
    return option.free + (option.factor or 0.0) * seconds


def fits(options: list[Option], chosen: Option, seconds: float, backlog: Backlog) -> bool:
    """Whether the file can go to ``chosen`` and still it, and every file after it, be
    done in time: it finishes within the time left, and the rest (each the length of this
    one) within what is left of each endpoint's concurrency and of the workers' time (a
    worker waiting for room on an endpoint is a worker taken from the backlog), filled
    from the fastest endpoint on. An endpoint not yet measured is taken to take any
    number (its first files measure it), and so is a file of no known length (its
    container does not say: review14, it divided by zero)."""
    if finish(chosen, seconds) > backlog.left:
        return False
    if not seconds > 0:
        return True
    rest = backlog.files - 1
    workers = math.inf if backlog.workers <= 0 else backlog.workers * backlog.left
    workers -= backlog.busy + finish(chosen, seconds)
    for o in sorted(options, key=lambda o: o.factor or 0.0):
        if rest <= 0:
            break
        if not o.factor:
            return True
        own = max(o.concurrency, 1) * backlog.left - o.busy
        own -= o.factor * seconds if o is chosen else 0.0
        taken = max(0, min(rest, math.floor(min(own, workers) / (o.factor * seconds))))
        rest -= taken
        workers -= taken * o.factor * seconds
    return rest <= 0


def ordered(
    options: list[Option],
    route: Route,
    seconds: float,
    backlog: Backlog | None = None,
) -> list[tuple[str, str]]:
    """The (endpoint, model) pairs in the order the file tries them."""
    place = {o.endpoint: n for n, o in enumerate(options)}
    if route == "fastest" or (route == "cheapest" and backlog is not None):
        soonest = sorted(
            options,
            key=lambda o: (o.factor is None, finish(o, seconds), place[o.endpoint]),
        )
        if route == "fastest":
            return [(o.endpoint, o.model) for o in soonest]
    if route == "cheapest":
        options = sorted(
            options,
            key=lambda o: (math.inf if o.price is None else o.price, place[o.endpoint]),
        )
        if backlog is not None:  # those that keep the deadline, cheapest first; else the soonest
            timely = [o for o in options if fits(options, o, seconds, backlog)]
            options = [*timely, *(o for o in options if o not in timely)] if timely else soonest
    return [(o.endpoint, o.model) for o in options]

"""Pure: which endpoint of a folder's list a file tries first (``route:``).

- ``in_order`` (the default): the list as written.
- ``cheapest``: the lowest price first (``price_per_hour:`` or the list price; unknown
  prices last). With ``deadline:`` (``2h``, ``30m``, ``90s`` or seconds), an endpoint
  whose measured speed would not finish the folder's backlog in time goes after those
  that would.
- ``fastest``: the soonest finish first, by the measured real-time factor (wall seconds
  per audio second, from the ledger's history); endpoints not yet measured keep their
  place in the list after the measured ones.

A backlog's finish is estimated as real-time factor * audio seconds * files waiting /
the endpoint's concurrency; an endpoint not yet measured is taken to meet any deadline
(its first files measure it)."""

from __future__ import annotations

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
    """One endpoint of the list, what it costs and how fast it was."""

    endpoint: str
    model: str
    price: float | None  # an audio hour
    factor: float | None  # measured wall seconds per audio second
    concurrency: int = 1


def finish(option: Option, seconds: float, waiting: int) -> float:
    """Seconds until ``option`` would finish ``waiting`` files of ``seconds`` each."""
    if option.factor is None:
        return 0.0
    return option.factor * seconds * max(waiting, 1) / max(option.concurrency, 1)


def ordered(
    options: list[Option],
    route: Route,
    deadline: float | None,
    seconds: float,
    waiting: int,
) -> list[tuple[str, str]]:
    """The (endpoint, model) pairs in the order the file tries them."""
    place = {o.endpoint: n for n, o in enumerate(options)}
    if route == "cheapest":

        def key(o: Option) -> tuple[bool, float, int]:
            late = deadline is not None and finish(o, seconds, waiting) > deadline
            price = math.inf if o.price is None else o.price
            return (late, price, place[o.endpoint])

        options = sorted(options, key=key)
    elif route == "fastest":
        options = sorted(
            options,
            key=lambda o: (o.factor is None, finish(o, seconds, waiting), place[o.endpoint]),
        )
    return [(o.endpoint, o.model) for o in options]

"""Pure: budgets (``budget: {per_day: 5.00, per_month: 50.00}``), on an endpoint and on a
folder, in the currency of the prices (``price_per_hour:``, or the list prices of
``transcribe/prices.py``). A period is a calendar day or month of this machine's local
time zone: a day's budget is fresh at local midnight, a month's on the 1st."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

Amount = Annotated[float, Field(ge=0)]


class Budget(BaseModel):
    """What may be spent a day and a month (either, or both)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    per_day: Amount | None = None
    per_month: Amount | None = None

    @model_validator(mode="after")
    def _something(self) -> Budget:
        if self.per_day is None and self.per_month is None:
            raise ValueError("budget: sets neither per_day nor per_month; set one or both")
        return self


@dataclass(frozen=True)
class Periods:
    """The local day (``2026-12-06``) and month (``2026-12``) a moment falls in."""

    day: str
    month: str


def periods(now: float) -> Periods:
    """The periods of ``now`` (seconds since the epoch) in the local time zone."""
    local = time.localtime(now)
    return Periods(time.strftime("%Y-%m-%d", local), time.strftime("%Y-%m", local))


@dataclass(frozen=True)
class Spent:
    """What was spent (reserved or settled) in the current day and month."""

    day: float = 0.0
    month: float = 0.0


def crossed(budget: Budget | None, spent: Spent, cost: float) -> str | None:
    """Which limit ``cost`` more would cross (``per_day 5.00``), or None if none."""
    if budget is None:
        return None
    for name, limit, already in (
        ("per_day", budget.per_day, spent.day),
        ("per_month", budget.per_month, spent.month),
    ):
        if limit is not None and already + cost > limit + 1e-9:
            return f"{name} {limit:.2f} (spent {already:.4f}, this file {cost:.4f})"
    return None


def beyond(budget: Budget | None, cost: float) -> str | None:
    """Which limit ``cost`` alone is over (``per_day 5.00``): no period can ever hold it
    (attack14: such a file once waited for ever, holding a worker); None if none."""
    if budget is None:
        return None
    for name, limit in (("per_day", budget.per_day), ("per_month", budget.per_month)):
        if limit is not None and cost > limit + 1e-9:
            return f"{name} {limit:.2f}"
    return None


def cost(seconds: float, per_hour: float) -> float:
    """What ``seconds`` of audio cost at ``per_hour``."""
    return max(seconds, 0.0) / 3600.0 * per_hour

"""What ``status`` says of budgets: spend against budget per endpoint and per folder, for
today and this month (local time), from the ledger's ``spend`` table."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dropscribe.vocab.budget import periods

if TYPE_CHECKING:
    from dropscribe.ledger.spend import Total
    from dropscribe.vocab.budget import Budget
    from dropscribe.vocab.config import Config


def as_json(cfg: Config, totals: list[Total]) -> dict[str, Any]:
    """``{"endpoints": {name: {...}}, "folders": {name: {...}}}``, each with today's and
    this month's spend and budget (null: no budget)."""
    now = periods(time.time())
    budgets: dict[str, dict[str, Budget | None]] = {
        "endpoints": {name: e.budget for name, e in cfg.endpoints.items()},
        "folders": {inbox.name: _folder_budget(inbox) for inbox in cfg.inboxes},
    }
    out: dict[str, Any] = {"day": now.day, "month": now.month}
    for scope, field in (("endpoints", "endpoint"), ("folders", "folder")):
        spent: dict[str, list[float]] = {}
        for row in totals:
            pair = spent.setdefault(getattr(row, field), [0.0, 0.0])
            pair[0] += row.today
            pair[1] += row.month
        names = sorted(set(spent) | {n for n, b in budgets[scope].items() if b is not None})
        out[scope] = {
            name: _entry(spent.get(name, [0.0, 0.0]), budgets[scope].get(name)) for name in names
        }
    return out


def lines(found: dict[str, Any]) -> list[str]:
    """``status``'s lines (nothing when nothing was spent and no budget is set)."""
    said: list[str] = []
    for scope in ("endpoints", "folders"):
        for name, entry in found[scope].items():
            said.append(
                f"  {scope[:-1]} {name}: today {_against(entry['today'], entry['per_day'])},"
                f" this month {_against(entry['month'], entry['per_month'])}"
            )
    if not said:
        return []
    return [f"spend (today {found['day']}, this month {found['month']}; local time):", *said]


def _entry(spent: list[float], budget: Budget | None) -> dict[str, Any]:
    return {
        "today": round(spent[0], 6),
        "month": round(spent[1], 6),
        "per_day": budget.per_day if budget else None,
        "per_month": budget.per_month if budget else None,
    }


def _against(spent: float, limit: float | None) -> str:
    return f"{spent:.4f}" if limit is None else f"{spent:.4f} of {limit:.2f}"


def _folder_budget(inbox: Any) -> Budget | None:
    """The budget an inbox's own level (or the defaults) sets for its files."""
    for layer in reversed(inbox.layers[:2]):
        found = layer.values.get("budget")
        if found is not None:
            return found  # type: ignore[no-any-return]
    return None

"""Budgets' pure pieces (vocab/budget.py) and the reservation's check against a real
SQLite ledger (ledger/spend.py)."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from dropscribe.ledger import spend
from dropscribe.ledger.store import SqliteLedger
from dropscribe.vocab.budget import Budget, Spent, cost, crossed, periods


def test_a_budget_sets_a_day_or_a_month():
    """A budget with neither per_day nor per_month is refused; negative amounts too."""
    with pytest.raises(ValidationError):
        Budget()
    with pytest.raises(ValidationError):
        Budget(per_day=-1)
    assert Budget(per_month=50).per_day is None


def test_crossed_names_the_limit_a_cost_would_cross():
    """The day's limit first, then the month's; exactly reaching a limit is allowed."""
    budget = Budget(per_day=5, per_month=50)
    assert crossed(budget, Spent(4, 10), 1.0) is None
    assert (crossed(budget, Spent(4.5, 10), 1.0) or "").startswith("per_day 5.00")
    assert (crossed(budget, Spent(0, 49.5), 1.0) or "").startswith("per_month 50.00")
    assert crossed(None, Spent(1e9, 1e9), 1.0) is None


def test_periods_are_the_local_day_and_month():
    """A moment's day and month, in the machine's local time zone."""
    now = time.mktime((2026, 12, 31, 23, 30, 0, 0, 0, -1))
    assert periods(now) == spend.Periods("2026-12-31", "2026-12")
    assert cost(1800, 0.27) == pytest.approx(0.135)


def test_reservations_stop_at_the_budget_and_settle(tmp_path):
    """Reservations go through until the next would cross the budget; a settled cost
    replaces the estimate and a released one frees it."""
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    now = time.time()

    def request(n: int) -> spend.Request:
        return spend.Request(
            f"k{n}", "api", "calls", f"/in/{n}.wav", 1.0, periods(now), Budget(per_day=2.5), None
        )

    try:
        first, second = ledger.reserve_spend(request(1), now), ledger.reserve_spend(request(2), now)
        assert isinstance(first, str)
        assert isinstance(second, str)
        refused = ledger.reserve_spend(request(3), now)
        assert isinstance(refused, spend.Refusal)
        assert (refused.scope, refused.name) == ("endpoint", "api")
        ledger.settle_spend(second, 0.0, spend.RELEASED, now)
        assert isinstance(ledger.reserve_spend(request(3), now), str)
        (total,) = ledger.spend_totals(periods(now))
        assert (total.endpoint, total.folder, total.today) == ("api", "calls", 2.0)
    finally:
        ledger.close()

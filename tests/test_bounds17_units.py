"""bounds17, pure: what a wait hangs on (``vocab/waits.fingerprint``) changes with an
endpoint's budget, price or URL and the folder's budget, and with nothing else."""

from __future__ import annotations

from typing import Any

from dropscribe.vocab import waits
from dropscribe.vocab.budget import Budget
from dropscribe.vocab.endpoints import Endpoint
from dropscribe.vocab.settings import FolderSettings


def of(folder: dict[str, Any] | None = None, **endpoint: Any) -> str:
    settings = FolderSettings(endpoint="e", model="whisper-1", **(folder or {}))
    made = Endpoint(name="e", base_url="http://api.example/v1", **endpoint)
    return waits.fingerprint(settings, {"e": made}.get)


def test_the_fingerprint_follows_budgets_prices_and_urls():
    """Raised or removed budgets, another price or URL: another fingerprint; the same
    settings (a timeout aside): the same one."""
    base = of(price_per_hour=0.36, budget=Budget(per_day=1.0))
    assert base == of(price_per_hour=0.36, budget=Budget(per_day=1.0), timeout=30)
    changed = [
        of(price_per_hour=0.36, budget=Budget(per_day=2.0)),
        of(price_per_hour=0.36),
        of(price_per_hour=0.5, budget=Budget(per_day=1.0)),
        of(price_per_hour=0.36, budget=Budget(per_day=1.0, per_month=9.0)),
        of({"budget": {"per_day": 1.0}}, price_per_hour=0.36, budget=Budget(per_day=1.0)),
    ]
    assert base not in changed
    assert len(set(changed)) == len(changed)


def test_an_endpoint_no_longer_configured_is_a_change():
    """The file's endpoint gone from the config: not the fingerprint it had."""
    settings = FolderSettings(endpoint="e", model="whisper-1")
    made = Endpoint(name="e", base_url="http://api.example/v1")
    assert waits.fingerprint(settings, {"e": made}.get) != waits.fingerprint(settings, {}.get)


def test_the_longest_wait_covers_a_month_and_a_dst_hour():
    """A month's budget turns at most 31 days and an hour ahead: within LONGEST."""
    assert waits.LONGEST >= 31 * 86400 + 3600

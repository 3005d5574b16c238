"""Pure (bounds17): what a file's wait was for, and how far ahead a wait may be.

A file that waits for a known moment (wake15) keeps it in the ledger (``next_try``,
until16) and a restarted daemon honours it. Two kinds of stored moment are not honoured:

- one further ahead than ``LONGEST``, the longest wait dropscribe itself writes (a
  month's budget turning on the 1st: at most 31 days, and a daylight saving hour; a
  429's pause is an hour at most, ``transcribe/backoff.MAX_RETRY_AFTER``): another host
  with a bad clock, or a hand, wrote it;
- one whose reason changed since it was written: ``fingerprint`` of the settings a wait
  hangs on (each endpoint of the file's list, its URL, price and budget, its kind
  (the list prices) and key (a 429's limits are the account's); the folder's budget),
  kept beside it (``ledger/waits.py``) and compared at the restart. A raised
  or removed budget, or another server, sends the file at once, as a reload does.

``moment`` reads a stored moment (attack16) for the ledger's files rows and its waits.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from dropscribe.vocab.budget import Budget
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings

DAY = 86400.0
LONGEST = 32 * DAY  # 31 days and a DST hour, and the rest of a day to spare
# attack16: the last moment a next_try may name (9999-12-30 UTC: a date in any zone)
LAST_MOMENT = 253_402_128_000.0


def fingerprint(settings: FolderSettings, endpoint: Callable[[str], Endpoint | None]) -> str:
    """What a wait of a file with ``settings`` hangs on, as 16 hex digits (of a hash: the
    key in it is not kept); ``endpoint`` gives each endpoint's settings by name (None:
    not configured)."""
    names = [settings.endpoint, *settings.fallbacks]
    ends: list[Any] = []
    for name in names:
        found = endpoint(name)
        if found is None:
            ends.append(None)
            continue
        kept = [name, found.base_url, found.price_per_hour, _budget(found.budget)]
        ends.append([*kept, found.kind, found.api_key])  # review17: list prices; a key's limits
    blob = json.dumps({"endpoints": ends, "folder": _budget(settings.budget)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _budget(budget: Budget | None) -> Any:
    return None if budget is None else [budget.per_day, budget.per_month]


def moment(value: object) -> float | None:
    """attack16: a stored next_try as a moment, or None (unknown) for what no dropscribe
    writes and no calendar shows (NaN, an infinity, words, before 1970 or after 9999),
    as another host or an old version may leave in a shared ledger: the daemon crashed
    on it as it started, status and explain with a traceback."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value <= LAST_MOMENT else None

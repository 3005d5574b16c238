"""Pure: when to try an upload again (PROTOCOL.md sections 2 and 3)."""

from __future__ import annotations

import email.utils
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

# Statuses a retry can fix: timeouts, lock conflicts, rate limits, server trouble.
RETRYABLE_STATUSES = frozenset({408, 409, 429})


def status_is_retryable(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


def should_retry(status: int, headers: Mapping[str, str]) -> bool:
    """``x-should-retry`` decides first, as openai-python does; then the status."""
    override = headers.get("x-should-retry", "").strip().lower()
    if override in {"true", "false"}:
        return override == "true"
    return status_is_retryable(status)


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``now`` is the wall-clock time (epoch seconds), used for the HTTP-date form.
    """
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            value = float(ms) / 1000
        except ValueError:
            value = -1
        if value >= 0:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, float(when.timestamp()) - now)


def backoff(retries_taken: int, cap: float, jitter: float) -> float:
    """openai-python's shape: ``min(0.5 * 2**n, cap)`` shortened by up to a quarter.

    ``jitter`` is a number in [0, 1) drawn by the caller, so this stays pure.
    """
    base: float = 0.5 * 2.0**retries_taken
    return min(base, cap) * (1 - 0.25 * jitter)


def delay(retries_taken: int, cap: float, jitter: float, retry_after: float | None) -> float:
    """The wait before the next attempt; never sooner than the server asked for."""
    wait = backoff(retries_taken, cap, jitter)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return wait

"""Pure: when to try an upload again (PROTOCOL.md sections 2 and 3)."""

from __future__ import annotations

import email.utils
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

# Statuses a retry can fix: timeouts, lock conflicts, rate limits, server trouble.
RETRYABLE_STATUSES = frozenset({408, 409, 429})
MAX_RETRY_AFTER = 3600.0  # seconds: a server asking for more is waited on for an hour
# hostile14b: a 429's Retry-After up to this is slept in the worker; a longer one pauses
# the endpoint and frees the worker (the file waits where it is, until the pause ends)
SLEPT_IN_PLACE = 30.0


def status_is_retryable(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


def should_retry(status: int, headers: Mapping[str, str]) -> bool:
    """``x-should-retry`` decides first, as openai-python does; then the status."""
    override = headers.get("x-should-retry", "").strip().lower()
    if override in {"true", "false"}:
        return override == "true"
    return status_is_retryable(status)


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``,
    at most MAX_RETRY_AFTER; None when it asked nothing that makes sense (NaN, words).

    ``now`` is the wall-clock time (epoch seconds), used for the HTTP-date form.
    """
    if (ms := _number(headers.get("retry-after-ms"))) is not None:
        return _capped(ms / 1000)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    if (seconds := _number(raw)) is not None:
        return _capped(seconds)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return _capped(float(when.timestamp()) - now)


def _number(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else math.nan
    except ValueError:
        return None
    return None if math.isnan(value) else value


def _capped(seconds: float) -> float:
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


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

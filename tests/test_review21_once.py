"""review21: once's verdict on an endpoint (once21) counts the uploads in a row that found
no answer; a 429 is an answer (the server is there, asking for patience). Counted in the row,
rate limits on four files and one dropped upload called a busy server unreachable ("5
uploads in a row, of 5 files, failed; none was answered") and once exited 3."""

from __future__ import annotations

import pytest

from dropscribe.errors import EndpointUnreachable, RetryableError
from test_once21_units import ENDPOINT, _fail, _health

LIMITED = RetryableError("HTTP 429: slow down", status=429, retry_after=1.0)


def test_429s_then_one_drop_do_not_call_the_endpoint_unreachable():
    """Four files rate limited in turn, then one upload dropped: not unreachable."""
    health = _health()
    health.succeeded("e")
    for who in "abcd":
        health.failed("e", LIMITED, who=who)
        health.down(ENDPOINT, "whisper-1", LIMITED, 0)
    _fail(health, "e")


def test_drops_after_a_429_are_counted_from_it():
    """A 429, then five drops of two files: unreachable, the five counted (not six)."""
    health = _health()
    health.succeeded("e")
    health.failed("e", LIMITED, who="a")
    health.down(ENDPOINT, "whisper-1", LIMITED, 0)
    for who in "abab":
        _fail(health, who)
    with pytest.raises(EndpointUnreachable, match=r"5 uploads in a row, of 2 files, failed"):
        _fail(health, "a")

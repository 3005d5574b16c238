"""once21: when ``once`` calls an endpoint unreachable after retryable failures that are not
outages (dropped connections, 500s): several files in a row failed there, or none has been
answered in the run; one file failing while others are answered is that file's alone."""

from __future__ import annotations

import pytest

from dropscribe.errors import EndpointRuledOut, EndpointUnreachable, RetryableError
from dropscribe.ops.metrics import Metrics
from dropscribe.transcribe.health import Health
from dropscribe.vocab.endpoints import Endpoint

DROPPED = RetryableError("closed the connection before answering in full")
ENDPOINT = Endpoint(name="e", base_url="http://api.example/v1")  # max_attempts 5, pause after 5


def _health() -> Health:
    return Health({"e": ENDPOINT}, Metrics(), lambda: 0.0)


def _fail(health: Health, who: str) -> None:
    health.failed("e", DROPPED, who=who)
    health.down(ENDPOINT, "whisper-1", DROPPED, 0)


def test_one_file_dropped_while_others_are_answered_is_that_files_alone():
    """After an answered upload, five drops in a row of one file never rule the endpoint out."""
    health = _health()
    health.succeeded("e")
    for _ in range(8):
        _fail(health, "a")


def test_drops_of_two_files_in_a_row_rule_the_endpoint_out_saying_why():
    """Five drops in a row of two files, none answered between: unreachable, and why."""
    health = _health()
    health.succeeded("e")  # it served earlier in the run: a crashed backend since
    for who in "abab":
        _fail(health, who)
    with pytest.raises(EndpointUnreachable, match=r"5 uploads in a row, of 2 files, failed"):
        _fail(health, "a")
    with pytest.raises(EndpointRuledOut):  # and every later upload is refused at once
        health.usable("e", "whisper-1")


def test_one_file_never_answered_in_the_run_is_the_endpoints_fault():
    """A run's lone file dropped five times, nothing ever answered: unreachable, not its fault."""
    health = _health()
    for _ in range(4):
        _fail(health, "a")
    with pytest.raises(EndpointUnreachable, match="none was answered in this run"):
        _fail(health, "a")


def test_an_answer_between_drops_starts_the_row_again():
    """A success (or the file's own 400, answered) between drops: the count starts again."""
    health = _health()
    for who in "abcd":
        _fail(health, who)
    health.succeeded("e")
    for who in "abcd":
        _fail(health, who)


def test_a_retry_after_longer_than_once_waits_rules_the_endpoint_out():
    """A 503 asking for 10 minutes of quiet: once does not wait, the endpoint is unreachable."""
    health = _health()
    asked = RetryableError("HTTP 503: maintenance", status=503, retry_after=600.0)
    health.failed("e", asked, who="a")
    with pytest.raises(EndpointUnreachable, match="asked for 600 s of quiet"):
        health.down(ENDPOINT, "whisper-1", asked, 1)


def test_429s_of_several_files_in_a_row_never_make_the_row_verdict():
    """Rate limited (429, a short Retry-After) on four files in a row: the server is
    there; the row does not call it unreachable (its own outages count, as outage20's)."""
    health = _health()
    limited = RetryableError("HTTP 429: slow down", status=429, retry_after=1.0)
    for who in "abcdabcd":
        health.failed("e", limited, who=who)
        health.down(ENDPOINT, "whisper-1", limited, 0)

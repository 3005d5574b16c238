"""outage20: an endpoint's outages in a row, whichever files they came from, as ``once``
counts them to rule it out; an answer (a 429 asking for patience, a file's 500) ends the run."""

from __future__ import annotations

from dropscribe.errors import OutageError, RetryableError
from dropscribe.ops.metrics import Metrics
from dropscribe.transcribe.health import Health
from dropscribe.vocab.endpoints import Endpoint


def _health() -> Health:
    endpoint = Endpoint(name="e", base_url="http://api.example/v1")
    return Health({"e": endpoint}, Metrics(), lambda: 0.0)


def test_outages_count_in_a_row_across_files_and_an_answer_ends_the_run():
    """Refused connections count up (any file's); a 429 or a 500 is an answer and resets."""
    health = _health()
    refused = OutageError("cannot connect: connection refused")
    assert [health.failed("e", refused) for _ in range(3)] == [1, 2, 3]
    assert health.failed("e", OutageError("too many requests", status=429)) == 0
    assert health.failed("e", OutageError("bad gateway", status=502)) == 1
    assert health.failed("e", RetryableError("server error", status=500)) == 0
    assert health.failed("e", refused) == 1
    health.succeeded("e")
    assert health.failed("e", refused) == 1

"""hostile14b's pure pieces: a probed duration capped by the file's size, a breaker held
for a Retry-After, a disputed bill's ceiling, and speeds measured from settled lengths."""

from __future__ import annotations

import time

import pytest

from dropscribe.audio import probe
from dropscribe.jobs import spending
from dropscribe.ledger import spend
from dropscribe.ledger.store import SqliteLedger
from dropscribe.transcribe.breaker import Breaker
from dropscribe.vocab.budget import periods
from test_hostile14b import forged_mkv


def test_a_forged_duration_is_capped_by_what_the_size_holds(tmp_path):
    """An MKV claiming a million seconds probes at most its size at 1 kbit/s."""
    forged = forged_mkv(tmp_path / "forged.mkv")
    found = probe.examine(forged)
    assert found.duration is not None
    assert 2.0 <= found.duration <= forged.stat().st_size / probe.LOWEST_BYTES_A_SECOND


def test_a_held_breaker_waits_the_pause_and_forgets_it_on_success():
    """A Retry-After hold pauses the breaker that long; the probe's success ends it."""
    breaker = Breaker()
    breaker.hold(100.0, 3600.0, "asked for 3600 s")
    assert breaker.held
    assert breaker.wait(200.0) == pytest.approx(3500.0)
    assert breaker.wait(3700.0) == 0.0  # the probe
    assert breaker.succeeded()
    assert not breaker.held


def test_a_bill_is_believed_up_to_twice_the_file_and_a_minute():
    """Up to 2x + 60 s is settled as billed; more is settled at that ceiling."""
    assert spending._undisputed("api", 80.0, 10.0, 1.0) == 80.0
    assert spending._undisputed("api", 1e7, 10.0, 1.0) == 80.0


def test_speeds_come_from_the_settled_length_not_the_reserved_one(tmp_path):
    """A request reserved at a claimed 1e6 s and settled at the 2 s billed measures
    its real-time factor over 2 s."""
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    now = time.time()
    request = spend.Request("k", "api", "calls", "/in/a.mkv", 1.0, periods(now), None, None, 1e6)
    try:
        made = ledger.reserve_spend(request, now)
        assert isinstance(made, str)
        ledger.settle_spend(made, 2.0, spend.SETTLED, now + 1, elapsed=1.0, seconds=2.0)
        assert ledger.spend_speeds(now - 10) == {"api": pytest.approx(0.5)}
    finally:
        ledger.close()

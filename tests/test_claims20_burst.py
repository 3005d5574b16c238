"""docs/promises.md 8: the main loop takes at most 10,000 hints in a row before it
looks at files again, however many keep coming (a flood of watch events cannot keep
settled files from being handed out)."""

from __future__ import annotations

import time

from conftest import make_wav
from dropscribe.ingest.watcher import Hint
from dropscribe.intake import BURST, Intake


class NoWorkers:
    """Workers that take nothing: the test looks at the hints left, not at jobs."""

    def in_flight(self, path: object) -> bool:
        return False

    def submit(self, file: object) -> bool:
        return False


def test_a_flood_of_hints_is_taken_ten_thousand_at_a_time(setup):
    """25,000 hints waiting: one turn of the loop takes 10,001 of them (the one it waited
    for and a burst), the next turn as many, the third the rest."""
    config = setup.load()
    path = make_wav(setup.inbox / "busy.wav")
    intake = Intake(lambda: config, None, clock=time.monotonic, wall=time.time)
    flood = 25_000
    for _ in range(flood):
        intake.hint(Hint(path))
    left = []
    for _ in range(3):
        intake.take(NoWorkers(), 0.0)
        left.append(intake._hints.qsize())  # what the promise is about
    assert BURST == 10_000
    assert left == [flood - 10_001, flood - 20_002, 0]

"""flake22: a stop's grace over, the worker Pool waits ``KEPT`` more for the jobs still
running. A stopping daemon's ledger gives every wait up a moment before the grace ends
(``groupcommit.UNWIND``, ``database.GIVE_UP_LEAD``: 0.2 s); at load 16 a job given up
then had not unwound by the grace's end, and the stop said it was abandoned
(``daemon.abandoned``, grace18 and pggrace18 in a loaded run), its worker process killed,
though it ended a moment later."""

from __future__ import annotations

import threading

from conftest import patience
from dropscribe.dispatch.pool import Pool
from dropscribe.vocab.config import KEPT

GRACE = 0.5  # seconds: the stop's shutdown_grace, what is left of it


def test_a_job_ending_just_past_the_grace_is_waited_for_not_abandoned() -> None:
    """A job that ends a moment (KEPT / 5) after the grace is over, as one the ledger gave
    up on unwinds, ends inside the pool's margin: no straggler, and its end was heard."""
    started, closing, ended = threading.Event(), threading.Event(), threading.Event()
    unwinding = threading.Event()  # never set: what the job does until it has ended

    def job(item: str) -> None:
        started.set()
        assert closing.wait(patience(10))
        unwinding.wait(GRACE + KEPT / 5)  # its work: past the grace, within the margin

    pool: Pool[str] = Pool(1, job, key=str, on_done=lambda item: ended.set())
    pool.start()
    assert pool.submit("a.wav")
    assert started.wait(patience(10))
    closing.set()
    assert pool.close(GRACE) == 0
    assert ended.wait(patience(10))

"""pool20: a stop asked reaches the workers at once, in worker processes (``processes: N``)
as in the main process's own threads, not only when the main process closes the pool: a
slot freed during the grace starts no upload, a job queued in a worker does not start, and
each file is done once at the next start. The main loop is held in a ledger statement
(PostgreSQL: ``psql`` left in ``LOCK TABLE afters``, which its rescan reads) so that it
reaches the pool's close only once the test lets it. Through the real ``dropscribe``
process, the real server and the fake API holding the uploads in flight."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from conftest import DaemonProcess, make_wav, wait_for
from test_pggrace18_stop import locked, shared, waiting_on

pytestmark = pytest.mark.slow

__all__ = ["shared"]  # the fixture

GRACE = 300.0  # longer than any wait of the test: the main loop is held until it lets go


@pytest.mark.parametrize("processes", [1, 2])
def test_a_stop_asked_while_the_main_loop_waits_starts_no_upload_in_any_worker(
    shared: Any, processes: int
) -> None:
    """SIGTERM while each process has one upload in flight, one job waiting for its slot
    and one queued, the main loop waiting for a table another session holds: the waiting
    jobs are abandoned at once, the queued ones never start, and once the uploads in flight
    answer (their slots free in the grace) no POST follows; exit 0, and a restart does each
    file once, uploaded once."""
    shared.data.update({"processes": processes, "workers": 2 * processes, "shutdown_grace": GRACE})
    shared.data["rescan_seconds"] = 0.5  # the main loop reads the afters table often
    shared.data["endpoints"]["local"].update({"max_concurrency": processes, "timeout": GRACE})
    shared.data["defaults"]["formats"] = ["txt"]
    paths = [shared.inbox / f"f{n}.wav" for n in range(3 * processes)]
    shared.api.hold()
    daemon = DaemonProcess(shared)
    try:
        daemon.wait_event("daemon.started")
        for n, path in enumerate(paths):
            make_wav(path, freq=300 + 50 * n)
        daemon.wait_event("file.settled", count=len(paths))  # each handed on in its turn
        assert shared.api.wait_waiting(processes, timeout=30)  # one upload in each process
        with locked(shared.url, "afters", "ACCESS EXCLUSIVE"):
            wait_for(
                lambda: waiting_on(shared.url, "afters") >= 1,
                timeout=30,
                what="the main loop's rescan waiting for the lock",
            )
            daemon.signal(signal.SIGTERM)
            wait_for(
                lambda: len(daemon.named("job.abandoned")) >= processes,
                timeout=10,
                what="the jobs waiting for a slot abandoned while the main loop waits",
            )
            shared.api.release()  # the uploads in flight answer: a slot frees in each process
            daemon.wait_event("upload.finished", count=processes)
        code = daemon.wait(timeout=60)  # the loop goes on: the stop asked ends
    finally:
        shared.api.release()
        daemon.kill()
    assert code == 0, daemon
    assert len(shared.api.uploads) == processes, [u.filename for u in shared.api.uploads]
    assert len(daemon.named("job.abandoned")) == processes  # the queued ones never started
    assert not daemon.named("daemon.abandoned")
    assert len(daemon.named("file.done")) == processes
    first = {u.filename for u in shared.api.uploads}

    again = DaemonProcess(shared, command="once")
    assert again.wait(timeout=60) == 0, again
    done = sorted(event["path"] for event in again.named("file.done"))
    assert done == sorted(str(p) for p in paths if p.name not in first)
    for path in paths:
        assert path.with_suffix(".txt").read_text() == f"transcript of {path.name}\n"
    assert sorted(u.filename for u in shared.api.uploads) == sorted(p.name for p in paths)

"""bounds17: a job that ends waiting for a known moment keeps what its wait is for
(``vocab/waits.py``'s fingerprint, in the ledger's ``waits`` table), before the moment
itself (``next_try``): a restarted daemon compares it with the settings of its time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe.vocab import waits

if TYPE_CHECKING:
    from dropscribe.jobs.job import Job
    from dropscribe.ledger.waits import Waits
    from dropscribe.transcribe.uploader import Uploader
    from dropscribe.vocab.endpoints import Endpoint


def kept(ledger: Waits, job: Job, uploader: Uploader) -> None:
    """Keep what ``job``'s wait hangs on: its endpoints as uploads use them now."""

    def endpoint(name: str) -> Endpoint | None:
        try:
            return uploader.client(name).endpoint
        except KeyError:  # not configured (a reload took it away)
            return None

    ledger.record_wait(job.path, waits.fingerprint(job.settings, endpoint))

"""How a job that ended in an exception nobody foresaw is decided (a bug of ours, or a
fault no branch names): its attempt counts, and after the endpoint's last one, or when
nothing about the file is known yet, it is quarantined with the reason."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe.errors import PermanentError
from dropscribe.jobs import verdicts
from dropscribe.vocab.states import JobState

if TYPE_CHECKING:
    from collections.abc import Callable

    from dropscribe.jobs.job import Job, Outcome
    from dropscribe.ledger.interface import JobLedger


def decided(
    ledger: JobLedger, job: Job, exc: Exception, max_attempts: Callable[[Job], int]
) -> Outcome:
    """An attempt that ended in an exception counts; after ``max_attempts(job)``, or when
    the content is not even known, the file is quarantined with the reason. Once the
    transcript is stored, a retry costs nothing but would fail the same way: at once."""
    reason = f"internal error: {exc.__class__.__name__}: {exc}"
    key = job.key
    if key is None or job.identity is None:
        return verdicts.fail(ledger, job, PermanentError(reason))
    if job.stored:
        kept = f"{reason} (the transcript is kept: dropscribe retry writes it again)"
        return verdicts.fail(ledger, job, PermanentError(kept))
    row = ledger.job(key)
    attempts = max(row.attempts if row is not None else 0, job.attempt)
    if not job.attempt:  # it crashed before its attempt was counted
        attempts += 1
        shaping = job.settings.shaping()
        ledger.start_attempt(key, shaping, attempts, state=JobState.RETRYING)
    if attempts >= max_attempts(job):  # fallback34c: of the list's
        error = PermanentError(reason)
        error.attempts = attempts
        return verdicts.fail(ledger, job, error)
    ledger.job_failed(key, reason, None, None, JobState.RETRYING)
    return verdicts.later(ledger, job, reason, attempt=attempts, will_retry=True)

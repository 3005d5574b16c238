"""How a job's end is carried out: a file that comes again (``later``: its error
recorded), a file given up (``fail``: the quarantine with its report and ledger row;
``sidecar_failed`` decides which),
``after:`` for a file that is done (one that failed kept pending and tried again:
done17), and the folder's hook for any of them: for a done file whose ``after:`` is
pending, once it is settled, with the recording's final place (paras19). The hook is
owed in the ledger in the write that records the end (hooks20: ``ledger/owed.py``), and
the row goes once it has run: a process that dies in between leaves it to be run late."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from dropscribe.errors import PermanentError
from dropscribe.jobs.job import Outcome
from dropscribe.ledger.interface import WRITE_FAILED
from dropscribe.ledger.owed import OwedHook, OwedRow
from dropscribe.outputs import disposition, late
from dropscribe.vocab.states import FileState

if TYPE_CHECKING:
    from typing import Protocol

    from dropscribe.errors import EndpointError, SidecarError, TranscriptionError
    from dropscribe.jobs.job import Job
    from dropscribe.ledger.afters import AfterRow, Afters
    from dropscribe.ledger.interface import Lookup, Verdicts
    from dropscribe.ledger.owed import Owed

    class DoneFiles(Afters, Owed, Lookup, late.Transcripts, Protocol):
        """A done file's pending ``after:`` and the hook it holds; its row and transcript
        (lang20: the language it was done in)."""

    class Ending(Verdicts, Owed, Protocol):
        """A file given up: its row, and its hook owed in the same write."""


log = structlog.get_logger("dropscribe")

ACTIONS = frozenset({"move", "delete"})  # the after:s that do something, and can fail


def later(
    ledger: Verdicts,
    job: Job,
    error: str,
    event: str = "file.failed",
    *,
    next_try: float | None = None,
    **fields: Any,
) -> Outcome:
    """Record ``error`` on the file and end the job: nothing is quarantined, and the
    file comes again (at the next rescan, once its endpoint is back, or at ``next_try``,
    the moment it waits for: wake15, kept in the ledger: until16). Logged as an error,
    except ``file.waiting`` (a warning: nothing is wrong with the file)."""
    assert job.key is not None  # once the content is known
    assert job.identity is not None  # set with it
    key = job.key
    ledger.record_file(
        job.path, job.inbox.name, job.identity, key.digest, key, FileState.ERROR, error, next_try
    )
    if event == "file.waiting":
        log.warning(event, reason=error, **fields)
    else:
        log.error(event, error=error, **fields)
    return Outcome.FAILED


def unreachable(ledger: Verdicts, job: Job, exc: EndpointError) -> Outcome:
    """In ``once``: the endpoint (each of the folder's list) was down for every try. An
    outage is never the file's fault: it stays where it is, its reason recorded, and the
    next run sends it. ``exc``: the last endpoint's failure."""
    names = [job.settings.endpoint, *job.settings.fallbacks]  # fallback34c: every one
    which = f"endpoint {names[0]}" if len(names) == 1 else f"endpoints {', '.join(names)}"
    later(
        ledger,
        job,
        f"waiting: {which} unreachable: {exc.message}",
        "file.waiting",
        endpoint=names[-1],
        endpoints=names,
        quarantined=False,
        action=f"left where it is; run again once {'an' if names[1:] else 'the'} endpoint is"
        " back (check base_url:)",
    )
    return Outcome.UNREACHABLE


def sidecar_failed(ledger: Ending, job: Job, exc: SidecarError) -> Outcome:
    """A sidecar could not be written: later, unless no later try can fit its name."""
    if exc.errno == errno.ENAMETOOLONG:  # no later try can fit it: say so, once
        name = Path(exc.filename or "").name
        reason = (
            f"sidecar name too long for its filesystem: {name} (drop the recording in"
            " again under a shorter name, or shorten name_template and run dropscribe retry)"
        )
        return fail(ledger, job, PermanentError(reason))
    return later(ledger, job, str(exc), "sidecar.failed", will_retry=True)


def fail(ledger: Ending, job: Job, exc: TranscriptionError) -> Outcome:
    """Quarantine the recording with its reason; it is never picked up again by itself.
    Once it was opened, only the very file that failed is moved; once its content is
    known, the ledger remembers it failed."""
    report = {
        "reason": exc.message,
        "status": exc.status,
        "request_id": exc.request_id,
        "attempts": exc.attempts,
        "key": str(job.key) if job.key is not None else None,
    }
    target = None
    try:
        target = disposition.quarantine(job.path, job.inbox, report, job.held)
    except disposition.NotOurs as err:
        log.warning("file.quarantine_skipped", reason=str(err))
    except OSError as err:
        log.error("file.quarantine_failed", error=err.strerror or str(err))
    owing = owed(job, "failed", [], moved=target, error=exc.message)
    if job.key is not None and job.identity is not None:
        args = (job.path, job.inbox.name, job.identity, job.key, FileState.FAILED, exc.message)
        ledger.record_owing(*args, owing)
    elif owing is not None:  # not recorded (its content unknown): the hook alone
        ledger.hook_owed(owing)
    log.error(
        "file.failed",
        error=exc.message,
        status=exc.status,
        request_id=exc.request_id,
        quarantined=str(target) if target else None,
    )
    hook(ledger, job, "failed", [], moved=target, error=exc.message)
    return Outcome.FAILED


def after(ledger: DoneFiles, job: Job) -> Path | None:
    """``after:`` for a file that is done; where it went, or None (kept, deleted, or
    left where it is with a warning: its sidecars are safe either way). One that fails
    is kept pending in the ledger (done17), and tried again at each rescan and at start
    (``again``) until it is done: never a new upload, never new sidecars."""
    return _after(ledger, job)[0]


def _after(ledger: DoneFiles, job: Job) -> tuple[Path | None, OwedRow | None]:
    """``after``'s place, and the hook its pending row held, now this host's to run:
    none when another host sharing the ledger did the pending action first (review19:
    it runs that hook, with where the recording went; both ran it, this one without)."""
    assert job.held is not None  # a file is done only once it was opened
    action = job.settings.after
    if action not in ACTIONS:  # keep (the default): nothing to do, nothing to read
        return None, None
    try:
        pending = ledger.after_pending(job.path)
    except WRITE_FAILED as exc:  # not known: a failure below is said as a first one
        log.warning("ledger.write_failed", error=str(exc), ledger=ledger.where)
        pending = None
    try:
        moved = disposition.after_success(job.held, job.inbox, action)
    except disposition.NotOurs as exc:  # not this file's any more: nothing to try again
        log.warning("file.after_skipped", after=action, reason=str(exc))
        return None, _settled(ledger, job, pending, None)
    except FileNotFoundError as exc:
        if not job.held.moved():  # a folder on its way, not the recording
            _failed(ledger, job, pending, exc.strerror or str(exc))
            return None, None
        # review17b: gone just as it was moved (another host sharing the ledger did the
        # pending after: first): no row kept for a file no rescan sees again
        log.warning("file.after_skipped", after=action, reason="gone from its inbox meanwhile")
        _settled(ledger, job, pending, None, hook=False)
        return None, None
    except OSError as exc:
        _failed(ledger, job, pending, exc.strerror or str(exc))
        return None, None
    if pending is not None:
        log.info(
            "file.after_done",
            after=action,
            moved_to=moved and str(moved),
            tries=pending.tries + 1,
            since=pending.since,
        )
    return moved, _settled(ledger, job, pending, moved)


def again(ledger: DoneFiles, job: Job) -> bool:
    """A done file come again (a rescan, a start): its pending ``after:`` tried once more,
    if it has one (True); no upload, no sidecars. One its folder no longer wants (``after:
    keep`` since) is forgotten. Once it is settled, the hook held back when it first
    failed runs, with where the recording went (hooks20: the hook the ledger holds for
    it; a row from before hooks20 holds none: its hook ran at done). lang20: the
    ``after:`` and the hook are the ones a rule by the file's language gives, as on time."""
    pending = ledger.after_pending(job.path)
    if pending is None:
        return False
    if late.routed(job.inbox):  # the settings it was done with, not the folder's bare ones
        job.settings = late.spoken(
            job.inbox, job.path, job.settings.language or _heard(ledger, job)
        )
    if job.settings.after not in ACTIONS:
        log.info("file.after_dropped", after=job.settings.after, was=pending.action)
        taken = _settled(ledger, job, pending, None)
    else:
        taken = _after(ledger, job)[1]
    if taken is not None:
        late.ran(ledger, late.settled(job.inbox, taken).hook, taken)
    return True


def _heard(ledger: DoneFiles, job: Job) -> str | None:
    """The language of the file's transcript (a folder that detects: none forced)."""
    row = ledger.file(job.path)
    return late.heard(ledger, row.key) if row is not None else None


def _failed(ledger: Afters, job: Job, pending: AfterRow | None, error: str) -> None:
    """Said as a warning once per file and error (then at debug), and kept pending; the
    hook waits for it (owed held, with the file's done state)."""
    action = job.settings.after
    job.after_pending = True
    if pending is None or (pending.action, pending.error) != (action, error):
        log.warning(
            "file.after_failed",
            after=action,
            error=error,
            will_retry=True,
            action="the recording stays where it is (its sidecars are written); tried"
            " again at each rescan and at start; the hook runs once it is done",
        )
    else:
        log.debug("file.after_failed", after=action, error=error, tries=pending.tries + 1)
    try:
        ledger.after_failed(job.path, job.inbox.name, action, error)
    except WRITE_FAILED as exc:  # then it is not tried again by itself, as before done17
        log.warning("ledger.write_failed", error=str(exc), ledger=ledger.where)


def _settled(
    ledger: DoneFiles, job: Job, pending: AfterRow | None, moved: Path | None, *, hook: bool = True
) -> OwedRow | None:
    """The pending row, if there was one, goes; with it (``hook``) the hook it held is
    taken by this host, ``moved_to`` set, in the same write."""
    if pending is None:
        return None
    try:
        if hook:
            return ledger.hook_unheld(job.path, moved)
        ledger.after_settled(job.path)
    except WRITE_FAILED as exc:  # tried again at the next rescan, and found done then
        log.warning("ledger.write_failed", error=str(exc), ledger=ledger.where)
    return None


def payload(
    job: Job, outcome: str, sidecars: list[Path], moved: Path | None, error: str | None
) -> dict[str, Any]:
    """The JSON the hook gets."""
    return {
        "file": str(job.path),
        "inbox": job.inbox.name,
        "outcome": outcome,
        "sidecars": [str(p) for p in sidecars],
        "moved_to": str(moved) if moved else None,
        "error": error,
        "late": False,  # hooks20: true when run by a later process (outputs/late.py)
    }


def owed(
    job: Job,
    outcome: str,
    sidecars: list[Path],
    *,
    moved: Path | None = None,
    error: str | None = None,
) -> OwedHook | None:
    """The hook to owe in the write that records this end (None: the folder has none);
    held while the file's ``after:`` is pending."""
    if job.settings.hook is None:
        return None
    held = outcome == "done" and job.after_pending
    body = payload(job, outcome, sidecars, moved, error)
    return OwedHook(job.path, outcome, job.inbox.name, body, held)


def hook(
    ledger: Owed,
    job: Job,
    outcome: str,
    sidecars: list[Path],
    *,
    moved: Path | None = None,
    error: str | None = None,
) -> None:
    """Run the folder's hook, if it has one (it never raises), owed before (``owed``);
    for a done file whose ``after:`` is pending, once that is done (``again``)."""
    if job.settings.hook is None:
        return
    if outcome == "done" and job.after_pending:
        log.info("hook.deferred", reason="after: pending", action="runs once the after: is done")
        return
    body = payload(job, outcome, sidecars, moved, error)
    late.ran(ledger, job.settings.hook, OwedRow(str(job.path), outcome, job.inbox.name, body))

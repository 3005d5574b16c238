"""One settled file -> one upload (or a stored transcript) -> its sidecars.

This is the job each pool worker runs. It consults the ledger first, so a file
whose transcript exists is never uploaded again; it holds a per-key lock so the
same content under two names is uploaded once; and it marks a file done only
after its sidecars are durable on disk.

The file's way, in the order of the methods below: the job is made (``_job``: the
file's inbox as it is now, its settings worked out once), the file opened once
(``_way``), its content known and looked up (``_opened``), its transcript had under
the key's lock and the ledger's claim (``_publish``, ``_transcript``; a fresh one as
``plan`` decides), its sidecars written (``_written``), then ``after:`` and the hook.
Each way it can end is one call to ``verdicts``: ``later`` (the error recorded, the file
comes again) or ``fail`` (quarantined); one nobody foresaw is ``crashed``'s to decide."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import threading
from typing import TYPE_CHECKING

import structlog

from dropscribe.audio import probe
from dropscribe.config import preflight, rules
from dropscribe.errors import (
    Abandoned,
    ClaimedElsewhere,
    EndpointError,
    EndpointWaits,
    Fenced,
    LedgerGaveUp,
    LedgerUnavailable,
    PermanentError,
    SidecarError,
    TranscriptionError,
)
from dropscribe.ingest import source
from dropscribe.jobs import cascade, chunked, crashed, plan, spoken, tracks, verdicts, waited
from dropscribe.jobs.cutshort import said_and_kept
from dropscribe.jobs.job import Job, Outcome, SettledFile, Tally
from dropscribe.ledger.interface import WRITE_FAILED
from dropscribe.ops.metrics import Metrics
from dropscribe.outputs import publish
from dropscribe.transcribe.board import Board
from dropscribe.transcribe.uploader import Uploader
from dropscribe.transcript import Transcript
from dropscribe.vocab import glossary
from dropscribe.vocab.states import FileState, JobKey

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager
    from pathlib import Path

    from dropscribe.ledger.interface import FileRow, JobLedger
    from dropscribe.transcript import Transcriber
    from dropscribe.vocab.config import Inbox

log = structlog.get_logger("dropscribe")
ASKED_AGAIN = "nothing to do: the daemon is stopping; the file is sent again at its next start"


class JobRunner:
    """Runs jobs; shared by every worker thread."""

    def __init__(  # noqa: PLR0913 - each is a part the runner is given, all keywords
        self,
        ledger: JobLedger,
        clients: dict[str, Transcriber],
        abort: threading.Event,
        *,
        work: Path,
        once: bool = False,
        inbox_of: Callable[[Path], Inbox | None] | None = None,
        metrics: Metrics | None = None,
        key_lock: Callable[[JobKey], AbstractContextManager[object]] | None = None,
        report: Callable[[SettledFile, Outcome | None], None] | None = None,
    ) -> None:
        self._ledger = ledger
        self._abort = abort
        self._metrics = metrics or Metrics()
        # In `once` a paused endpoint fails its files (there is no later to wait for).
        self._uploader = Uploader(
            ledger,
            clients,
            abort,
            wait_for_endpoints=not once,
            metrics=self._metrics,
            board=Board(work.parent),  # work is state_dir/work: status reads it there
        )
        # Scratch audio of long recordings: state_dir/work, this host's own.
        chunker = chunked.Chunker(ledger, self._uploader, work, abort)
        self._work = work
        planner = plan.Planner(self._uploader, chunker, abort)
        self._planner = cascade.Cascade(ledger, self._uploader, planner, abort, once=once)
        self._inbox_of = inbox_of
        self._key_locks: dict[JobKey, threading.Lock] = {}
        self._key_locks_guard = threading.Lock()
        self._key_lock_of = key_lock or self._key_lock
        self._report = report
        self._paid: dict[JobKey, Transcript] = {}  # fresh transcripts the ledger could not take
        self._until: dict[Path, float] = {}  # wake15: a waiting file's next try (epoch s)
        self.tally = Tally()

    def __call__(self, file: SettledFile) -> SettledFile:
        """One job, inside its error boundary: every job ends in an outcome. Returns the
        file as it ended: with ``until``, when it waits for a known moment (wake15)."""
        structlog.contextvars.bind_contextvars(path=str(file.path), inbox=file.inbox.name)
        outcome = None
        try:
            job = self._job(file)
            try:
                outcome = self._way(job)
            except Abandoned:
                raise
            except LedgerUnavailable as exc:  # said once by the ledger; the file waits
                log.warning("file.waiting", reason=str(exc), will_retry=True, quarantined=False)
                outcome = Outcome.FAILED
            except Exception as exc:  # a bug of ours, or a fault nobody foresaw: decide anyway
                log.exception("job.crashed", error=f"{exc.__class__.__name__}: {exc}")
                outcome = crashed.decided(self._ledger, job, exc, self._planner.max_attempts)
            self.tally.add(outcome)
            self._metrics.outcomes.labels(outcome).inc()
        except Abandoned:
            log.info("job.abandoned", reason="shutting down")
        finally:
            structlog.contextvars.clear_contextvars()
            until = self._until.pop(file.path, None)  # wake15: when a waiting file is tried
            ended = dataclasses.replace(file, until=until)
            if self._report is not None:
                self._report(ended, outcome)
        return ended

    @property
    def uploader(self) -> Uploader:
        """What sends (its clients are the worker host's to swap on a reload and close)."""
        return self._uploader

    # ------------------------------------------------------------ the file's way

    def _job(self, file: SettledFile) -> Job:
        """The job for ``file``: its inbox as configured now (a reload may have changed
        it), else as queued; its settings worked out once, from that inbox."""
        inbox = self._inbox_of(file.path) if self._inbox_of else None
        if inbox is not None and inbox.path == file.inbox.path:
            file = dataclasses.replace(file, inbox=inbox)  # routing34b: its queue too
        return Job(file, rules.effective(file.inbox, file.path))

    def _way(self, job: Job) -> Outcome:
        """The file opened once; everything after reads the descriptor, not the name."""
        try:
            with source.opened(job.path, follow_symlinks=job.inbox.follow_symlinks) as job.held:
                return self._opened(job)
        except source.Unusable as why:
            log.info("file.ignored", reason=str(why))
            return Outcome.SKIPPED
        except FileNotFoundError:
            log.info("file.vanished")
            return Outcome.SKIPPED
        except OSError as exc:  # the file itself: scratch and sidecar faults are caught below
            unread = dataclasses.replace(job, held=None, key=None)  # by its name, unrecorded
            error = PermanentError(f"cannot read file: {exc.strerror or exc}")
            return verdicts.fail(self._ledger, unread, error)

    def _opened(self, job: Job) -> Outcome:
        """The content known (the ledger's fingerprint of this very file, or read), the
        work looked up, the sidecars' folder checked; then the transcript and its
        sidecars under the key's lock and the ledger's claim."""
        held = job.held
        assert held is not None  # opened by _way
        row = self._ledger.file(job.path)
        if row is not None and (row.size, row.mtime_ns, row.inode) == held.identity:
            digest = row.fingerprint
        else:
            digest = held.fingerprint()
            if held.written():
                log.info("file.changed", reason="written to while being read")
                return Outcome.SKIPPED
        key = job.key = JobKey(digest, job.settings.shaping_hash())
        if skip := self._skip(row, job):
            if not verdicts.again(self._ledger, job):  # done17: a pending after: tried
                log.info("file.skipped", reason=skip)
            self._recognised(job, row)
            return Outcome.SKIPPED
        try:  # issue 32: the language heard first, then the settings chosen by it
            job.settings = spoken.settled(job, self._uploader, self._ledger)
        except spoken.Unexpected as exc:
            return verdicts.later(self._ledger, job, str(exc), "file.waiting", quarantined=False)
        except TranscriptionError as exc:  # the language_model cannot be used: the config's
            error = f"cannot detect the language: {exc.message}"
            return verdicts.later(self._ledger, job, error, will_retry=True, quarantined=False)
        if not preflight.writable(folder := rules.sidecar_dir(job.inbox, job.settings, job.path)):
            error = (
                f"cannot write sidecars into {folder} (this user may not, or it is"
                " read-only); nothing was sent"
            )
            return verdicts.later(self._ledger, job, error, will_retry=True, quarantined=False)
        if tracks.chosen(job.settings):  # each chosen audio track its own job, then the file's end
            return tracks.each(job, self._sidecars, self._ledger, self._work, self._uploader)
        # Held until the transcript is stored: a copy of this content waits, then reuses it.
        # A shared ledger's claim goes with it: another host holding it means later.
        # Marked done before the claim ends: a host claiming it next sees it done, writes nothing.
        # Sidecars that carry this job's mark are ours from before a lost ledger: adopted.
        with self._key_lock_of(key), self._claimed(job):
            adopted = publish.adopt(
                self._ledger, job.inbox, job.path, job.settings, key, held.identity, job.claim
            )
            written = adopted or self._publish(job)
            if isinstance(written, Outcome):
                return written
            moved = verdicts.after(self._ledger, job)
            done = glossary.recorded(job.settings.formats, job.settings.glossary)
            owed = None if adopted else verdicts.owed(job, "done", written, moved=moved)
            self._ledger.file_done(job.path, done, written, owed)  # hooks20: its hook owed
        if adopted:
            log.info(
                "file.adopted", sidecars=[str(p) for p in adopted], moved_to=moved and str(moved)
            )
            return Outcome.SKIPPED
        log.info(
            "file.done", outputs=[str(p) for p in written], moved_to=str(moved) if moved else None
        )
        verdicts.hook(self._ledger, job, "done", written, moved=moved)
        return Outcome.DONE

    def _sidecars(self, job: Job) -> list[Path] | Outcome:
        """One audio track's transcript and sidecars under its key's lock and claim."""
        held, key = job.known()
        with self._key_lock_of(key), self._claimed(job):
            args = (job.inbox, job.path, job.settings, key, held.identity, job.claim)
            return publish.adopt(self._ledger, *args) or self._publish(job)

    def _publish(self, job: Job) -> list[Path] | Outcome:
        """The transcript (stored, or fresh) and its sidecars, under the key's lock and
        the claim: the sidecars written, or how the file ended without them."""
        if job.claim is None:
            return Outcome.SKIPPED
        if self._ledger.shared and (skip := self._skip(self._ledger.file(job.path), job)):
            log.info("file.skipped", reason=skip)  # another host did it meanwhile
            return Outcome.SKIPPED
        try:
            transcript, fresh = self._transcript(job)
        except EndpointError as exc:  # once, or EndpointWaits: the endpoint, not the file
            if exc.outage:  # no server answered: the file stays where it is
                return verdicts.unreachable(self._ledger, job, exc)
            fields: dict[str, object] = {"status": exc.status, "quarantined": False}
            until = exc.until if isinstance(exc, EndpointWaits) else None
            if until is not None:  # wake15: said, kept (until16: in the ledger's next_try)
                self._until[job.path] = until  # for the intake: tried again then
                fields["until"] = _when(until)
                waited.kept(self._ledger, job, self._uploader)  # bounds17: what it waits for
            return verdicts.later(
                self._ledger, job, exc.message, exc.event, next_try=until, **fields
            )
        except TranscriptionError as exc:
            return verdicts.fail(self._ledger, job, exc)
        except OSError as exc:  # scratch audio under state_dir (a full disk): not the file
            error = f"cannot write scratch audio: {exc.strerror or exc}"
            return verdicts.later(self._ledger, job, error, "audio.scratch_failed", will_retry=True)
        _, key = job.known()
        if fresh:  # paid for: kept here until the ledger has it (a full state_dir)
            self._paid[key] = transcript
        try:  # every ledger write from here on may fail: the transcript stays kept
            return self._written(job, transcript, fresh)  # a stop lingers KEPT (Pool.close)
        except LedgerGaveUp as exc:  # grace18: stopping, the ledger could not take it
            log.warning("ledger.write_failed", error=str(exc), action=ASKED_AGAIN)
            raise  # Abandoned: job.abandoned, nothing counted
        except WRITE_FAILED as exc:
            log.error(
                "ledger.write_failed",
                error=str(exc),
                ledger=self._ledger.where,
                will_retry=True,
                action="the transcript is kept in memory; its sidecars follow at the"
                " next rescan once the ledger can be written",
            )
            return Outcome.FAILED

    def _transcript(self, job: Job) -> tuple[Transcript, bool]:
        """The stored transcript of this content and settings, or a fresh upload (True)."""
        held, key = job.known()
        stored, attempt = self._ledger.begin(
            job.path, job.inbox.name, held.identity, key, job.settings.shaping()
        )
        self._planner.reused(job)  # fallback34c: the sidecars name the model that made it
        if stored is not None and stored.result is not None:
            log.info("transcript.reused", request_id=stored.request_id)
            return Transcript.from_json(stored.result, stored.request_id), False
        if (paid := self._paid.get(key)) is not None:  # the ledger could not take it before
            log.info("transcript.reused", request_id=paid.request_id, kept="in memory")
            return paid, True
        job.attempt = attempt
        found = probe.examine(held.content)
        log.info(
            "audio.probed", container=found.container, codec=found.codec, seconds=found.duration
        )
        sent = said_and_kept(held, found, lambda probed: self._planner.transcribe(job, probed))
        return spoken.believed(job.settings, sent), True

    def _written(self, job: Job, transcript: Transcript, fresh: bool) -> list[Path] | Outcome:
        """A transcript just had -> its sidecars, or how the file ended without them; a
        fresh one leaves ``_paid`` only once the ledger holds it (or it is of no use)."""
        held, key = job.known()
        if changed := self._changed(job, transcript, fresh):
            log.warning("file.changed", reason=changed, will_retry=True)
            return Outcome.SKIPPED  # what the name holds now settles and comes again
        job.stored = True
        try:
            written = publish.write(
                self._ledger,
                job.inbox,
                job.path,
                job.settings,
                transcript,
                key if fresh else None,
                key.digest,
                job.claim,
                mode=held.stat.st_mode,
            )
        except SidecarError as exc:  # the ledger took the transcript before this
            self._paid.pop(key, None)
            return verdicts.sidecar_failed(self._ledger, job, exc)
        except Fenced as exc:  # another host may own the job now: it writes them
            self._paid.pop(key, None)
            self._metrics.claims.labels("lost").inc()
            log.warning("claim.lost", error=str(exc), action="nothing was written")
            return Outcome.SKIPPED
        self._paid.pop(key, None)
        return written

    # ------------------------------------------------------------ its parts

    def _changed(self, job: Job, transcript: Transcript, fresh: bool) -> str | None:
        """Why the transcript must not be written beside the file's name, if it must not.
        Content written to meanwhile: the transcript is of neither version, and is not
        kept. The name now holding another file: the transcript is of the content read,
        kept for it (its new name reuses it), but not written beside someone else's."""
        held, key = job.known()
        why = held.changed()
        if why is not None and fresh:
            if not held.written():
                with contextlib.suppress(Fenced):  # then it is another host's to keep
                    publish.keep(self._ledger, held.path, key, transcript, job.claim)
            self._paid.pop(key, None)
        return why

    def _skip(self, row: FileRow | None, job: Job) -> str | None:
        """Why this very content needs no new work, when the ledger has it done."""
        _, key = job.known()
        if row is None or row.fingerprint != key.digest:
            return None
        skip = rules.settled_before(row, job.settings, digest=key.digest)
        if skip is None and row.state == FileState.DONE and row.key != key:
            log.info("file.rerun", reason="settings changed")
        return skip

    def _recognised(self, job: Job, row: FileRow | None) -> None:
        """A done file found by its content under a new identity (touched, copied over
        with its own bytes): the identity is kept, so rescans know it without reading it."""
        ident = job.identity
        if row is None or ident is None or (row.size, row.mtime_ns, row.inode) == ident:
            return
        state, why = FileState(row.state), row.error
        try:
            self._ledger.record_file(
                job.path, job.inbox.name, ident, row.fingerprint, row.key, state, why
            )
        except WRITE_FAILED as exc:  # it costs one more read at the next rescan, no more
            log.warning("ledger.write_failed", error=str(exc), ledger=self._ledger.where)

    @contextlib.contextmanager
    def _claimed(self, job: Job) -> Iterator[None]:
        """The ledger's claim on the job's key as ``job.claim`` for the block (None: held)."""
        _, key = job.known()
        try:
            with self._ledger.hold(key, job.path) as claim:
                self._metrics.claims.labels("won").inc()
                job.claim = claim
                yield
        except ClaimedElsewhere as exc:  # raised before the block, never from it
            self._metrics.claims.labels("elsewhere").inc()
            log.info("file.claimed_elsewhere", host=exc.host, lease_left=round(exc.seconds_left))
            yield
        finally:
            job.claim = None

    def _key_lock(self, key: JobKey) -> threading.Lock:
        with self._key_locks_guard:
            return self._key_locks.setdefault(key, threading.Lock())


def _when(until: float) -> str:
    """wake15: a moment (epoch seconds) as people read it: local ISO 8601, with its offset."""
    return dt.datetime.fromtimestamp(until).astimezone().isoformat(timespec="seconds")

"""One settled file -> one upload (or a stored transcript) -> its sidecars.

This is the job each pool worker runs. It consults the ledger first, so a file
whose transcript exists is never uploaded again; it holds a per-job lock so the
same content under two names is uploaded once; and it marks a file done only
after its sidecars are durable on disk.
"""

from __future__ import annotations

import contextlib
import errno
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from dropscribe.audio import probe
from dropscribe.config import preflight, rules
from dropscribe.errors import (
    Abandoned,
    ClaimedElsewhere,
    EndpointError,
    Fenced,
    LedgerUnavailable,
    PermanentError,
    Replan,
    SidecarError,
    TranscriptionError,
)
from dropscribe.ingest import source
from dropscribe.jobs import chunked, verdicts
from dropscribe.jobs.job import Item, Outcome, Progress, Tally
from dropscribe.ledger.interface import WRITE_FAILED
from dropscribe.ops.metrics import Metrics
from dropscribe.outputs import publish
from dropscribe.transcribe.engines import make_client
from dropscribe.transcribe.uploader import Uploader
from dropscribe.transcript import Transcript
from dropscribe.vocab.states import FileState, JobKey, JobState

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager

    import httpx

    from dropscribe.ledger.interface import Claim, FileRow, Ledger
    from dropscribe.transcript import Transcriber
    from dropscribe.vocab.config import Inbox
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings

log = structlog.get_logger("dropscribe")

MAX_REPLANS = 8  # each needs a new refusal learned: more than there are things to refuse


class JobRunner:
    """Runs jobs; shared by every worker thread."""

    def __init__(  # noqa: PLR0913 - each is a part the runner is given, all keywords
        self,
        ledger: Ledger,
        clients: dict[str, Transcriber],
        abort: threading.Event,
        *,
        work: Path,
        once: bool = False,
        inbox_of: Callable[[Path], Inbox | None] | None = None,
        metrics: Metrics | None = None,
        key_lock: Callable[[JobKey], AbstractContextManager[object]] | None = None,
        report: Callable[[Item, Outcome | None], None] | None = None,
    ) -> None:
        self._ledger = ledger
        self._abort = abort
        self._metrics = metrics or Metrics()
        # In `once` a paused endpoint fails its files (there is no later to wait for).
        self._uploader = Uploader(
            ledger, clients, abort, wait_for_endpoints=not once, metrics=self._metrics
        )
        # Scratch audio of long recordings: state_dir/work, this host's own.
        self._chunker = chunked.Chunker(ledger, self._uploader, work, abort)
        self._inbox_of = inbox_of
        self._key_locks: dict[JobKey, threading.Lock] = {}
        self._key_locks_guard = threading.Lock()
        self._key_lock_of = key_lock or self._key_lock
        self._report = report
        self._paid: dict[JobKey, Transcript] = {}  # fresh transcripts the ledger could not take
        self.tally = Tally()

    def __call__(self, item: Item) -> None:
        structlog.contextvars.bind_contextvars(path=str(item.path), inbox=item.inbox.name)
        outcome = None
        progress = Progress()
        try:
            try:
                outcome = self._process(item, progress)
            except Abandoned:
                raise
            except LedgerUnavailable as exc:  # said once by the ledger; the file waits
                log.warning("file.waiting", reason=str(exc), will_retry=True, quarantined=False)
                outcome = Outcome.FAILED
            except Exception as exc:  # a bug of ours, or a fault nobody foresaw: decide anyway
                log.exception("job.crashed", error=f"{exc.__class__.__name__}: {exc}")
                outcome = self._crashed(item, progress, exc)
            self.tally.add(outcome)
            self._metrics.outcomes.labels(outcome).inc()
        except Abandoned:
            log.info("job.abandoned", reason="shutting down")
        finally:
            structlog.contextvars.clear_contextvars()
            if self._report is not None:
                self._report(item, outcome)

    def clients(self) -> list[Transcriber]:
        return self._uploader.clients()

    def client(self, name: str) -> Transcriber:
        return self._uploader.client(name)

    def update_endpoints(
        self,
        old: dict[str, Endpoint],
        new: dict[str, Endpoint],
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Apply reloaded endpoints: unchanged ones keep their client (and its state)."""
        self._uploader.set_clients(
            {
                name: self.client(name)
                if old.get(name) == endpoint
                else make_client(endpoint, transport, self._abort)
                for name, endpoint in new.items()
            }
        )

    def _crashed(self, item: Item, progress: Progress, exc: Exception) -> Outcome:
        """An attempt that ended in an exception counts; after max_attempts, or when the
        content is not even known, the file is quarantined with the reason. Once the
        transcript is stored, a retry costs nothing but would fail the same way: at once."""
        reason = f"internal error: {exc.__class__.__name__}: {exc}"
        key, ident = progress.key, progress.identity
        if key is None or ident is None:
            return self._fail(item, PermanentError(reason), held=progress.held)
        if progress.stored:
            kept = f"{reason} (the transcript is kept: dropscribe retry writes it again)"
            return self._fail(item, PermanentError(kept), key, ident, progress.held)
        settings = rules.effective(item.inbox, item.path)
        job = self._ledger.job(key)
        attempts = max(job.attempts if job is not None else 0, progress.attempt)
        if not progress.attempt:  # it crashed before its attempt was counted
            attempts += 1
            self._ledger.start_attempt(key, settings.shaping(), attempts, state=JobState.RETRYING)
        if attempts >= self._uploader.client(settings.endpoint).endpoint.max_attempts:
            error = PermanentError(reason)
            error.attempts = attempts
            return self._fail(item, error, key, ident, progress.held)
        self._ledger.job_failed(key, reason, None, None, JobState.RETRYING)
        digest = key.digest
        self._ledger.record_file(
            item.path, item.inbox.name, ident, digest, key, FileState.ERROR, reason
        )
        log.error("file.failed", error=reason, attempt=attempts, will_retry=True)
        return Outcome.FAILED

    def _process(self, item: Item, progress: Progress) -> Outcome:
        path = item.path
        # The inbox as configured now (a reload may have changed it), else as queued.
        inbox = self._inbox_of(path) if self._inbox_of else None
        if inbox is not None and inbox.path == item.inbox.path:
            item = Item(inbox, path)
        try:
            with source.opened(path, follow_symlinks=item.inbox.follow_symlinks) as held:
                return self._job(item, held, progress)
        except source.Unusable as why:
            log.info("file.ignored", reason=str(why))
            return Outcome.SKIPPED
        except FileNotFoundError:
            log.info("file.vanished")
            return Outcome.SKIPPED
        except OSError as exc:  # the file itself: scratch and sidecar faults are caught below
            return self._fail(item, PermanentError(f"cannot read file: {exc.strerror or exc}"))

    def _job(self, item: Item, held: source.Opened, progress: Progress) -> Outcome:
        """Everything about one file, read through the descriptor ``held``."""
        path, ident = item.path, held.identity
        progress.held = held
        settings = rules.effective(item.inbox, path)
        row = self._ledger.file(path)
        if row is not None and (row.size, row.mtime_ns, row.inode) == ident:
            digest = row.fingerprint
        else:
            digest = held.fingerprint()
            if held.written():
                log.info("file.changed", reason="written to while being read")
                return Outcome.SKIPPED
        key = JobKey(digest, settings.shaping_hash())
        progress.key, progress.identity = key, ident
        if skip := self._skip(row, digest, key, settings):
            log.info("file.skipped", reason=skip)
            self._recognised(item, row, ident)
            return Outcome.SKIPPED
        if not preflight.writable(folder := rules.sidecar_dir(item.inbox, settings, path)):
            error = (
                f"cannot write sidecars into {folder} (this user may not, or it is"
                " read-only); nothing was sent"
            )
            self._ledger.record_file(
                path, item.inbox.name, ident, digest, key, FileState.ERROR, error
            )
            log.error("file.failed", error=error, will_retry=True, quarantined=False)
            return Outcome.FAILED
        # Held until the transcript is stored: a copy of this content waits, then reuses it.
        # A shared ledger's claim goes with it: another host holding it means later.
        # The file is marked done before the claim ends: another host that claims the
        # job next sees it done, rather than writing its sidecars a second time.
        # Sidecars that carry this job's mark are ours from before a lost ledger: adopted.
        with self._key_lock_of(key), self._claimed(key, path) as claim:
            adopted = publish.adopt(self._ledger, item.inbox, path, settings, key, ident, claim)
            written = adopted or self._publish(item, held, progress, settings, key, claim)
            if isinstance(written, Outcome):
                return written
            moved = verdicts.after(item, held, settings.after)
            self._ledger.file_done(path, [f.value for f in settings.formats], written)
        if adopted:
            log.info(
                "file.adopted", sidecars=[str(p) for p in adopted], moved_to=moved and str(moved)
            )
            return Outcome.SKIPPED
        log.info(
            "file.done", outputs=[str(p) for p in written], moved_to=str(moved) if moved else None
        )
        verdicts.hook(settings, item, "done", written, moved=moved)
        return Outcome.DONE

    def _publish(
        self,
        item: Item,
        held: source.Opened,
        progress: Progress,
        settings: FolderSettings,
        key: JobKey,
        claim: Claim | None,
    ) -> list[Path] | Outcome:
        """The transcript (stored, or fresh) and its sidecars, under the job's lock and
        claim: the sidecars written, or how the file ended without them."""
        path, ident, digest = item.path, held.identity, key.digest
        if claim is None:
            return Outcome.SKIPPED
        if self._ledger.shared and (
            skip := self._skip(self._ledger.file(path), digest, key, settings)
        ):
            log.info("file.skipped", reason=skip)  # another host did it meanwhile
            return Outcome.SKIPPED
        try:
            transcript, fresh = self._transcript(item, settings, key, held, progress)
        except EndpointError as exc:  # only in `once`: the endpoint, not the file
            self._ledger.record_file(
                path, item.inbox.name, ident, digest, key, FileState.ERROR, exc.message
            )
            log.error("file.failed", error=exc.message, status=exc.status, quarantined=False)
            return Outcome.FAILED
        except TranscriptionError as exc:
            return self._fail(item, exc, key, ident, held)
        except OSError as exc:  # scratch audio under state_dir (a full disk): not the file
            error = f"cannot write scratch audio: {exc.strerror or exc}"
            self._ledger.record_file(
                path, item.inbox.name, ident, digest, key, FileState.ERROR, error
            )
            log.error("audio.scratch_failed", error=error, will_retry=True)
            return Outcome.FAILED
        if fresh:  # paid for: kept here until the ledger has it (a full state_dir)
            self._paid[key] = transcript
        try:  # every ledger write from here on may fail: the transcript stays kept
            return self._written(item, held, progress, settings, key, claim, transcript, fresh)
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

    def _written(
        self,
        item: Item,
        held: source.Opened,
        progress: Progress,
        settings: FolderSettings,
        key: JobKey,
        claim: Claim,
        transcript: Transcript,
        fresh: bool,
    ) -> list[Path] | Outcome:
        """A transcript just had -> its sidecars, or how the file ended without them; a
        fresh one leaves ``_paid`` only once the ledger holds it (or it is of no use)."""
        if changed := self._changed(held, key, transcript, fresh, claim):
            log.warning("file.changed", reason=changed, will_retry=True)
            return Outcome.SKIPPED  # what the name holds now settles and comes again
        progress.stored = True
        try:
            written = publish.write(
                self._ledger,
                item.inbox,
                item.path,
                settings,
                transcript,
                key if fresh else None,
                key.digest,
                claim,
                mode=held.stat.st_mode,
            )
        except SidecarError as exc:  # the ledger took the transcript before this
            self._paid.pop(key, None)
            return self._sidecar_failed(item, exc, key.digest, key, held)
        except Fenced as exc:  # another host may own the job now: it writes them
            self._paid.pop(key, None)
            self._metrics.claims.labels("lost").inc()
            log.warning("claim.lost", error=str(exc), action="nothing was written")
            return Outcome.SKIPPED
        self._paid.pop(key, None)
        return written

    def _changed(
        self,
        held: source.Opened,
        key: JobKey,
        transcript: Transcript,
        fresh: bool,
        claim: Claim,
    ) -> str | None:
        """Why the transcript must not be written beside the file's name, if it must not.
        Content written to meanwhile: the transcript is of neither version, and is not
        kept. The name now holding another file: the transcript is of the content read,
        kept for it (its new name reuses it), but not written beside someone else's."""
        why = held.changed()
        if why is not None and fresh:
            if not held.written():
                with contextlib.suppress(Fenced):  # then it is another host's to keep
                    publish.keep(self._ledger, held.path, key, transcript, claim)
            self._paid.pop(key, None)
        return why

    def _recognised(self, item: Item, row: FileRow | None, ident: tuple[int, int, int]) -> None:
        """A done file found by its content under a new identity (touched, copied over
        with its own bytes): the identity is kept, so rescans know it without reading it."""
        if row is None or (row.size, row.mtime_ns, row.inode) == ident:
            return
        state, why = FileState(row.state), row.error
        try:
            self._ledger.record_file(
                item.path, item.inbox.name, ident, row.fingerprint, row.key, state, why
            )
        except WRITE_FAILED as exc:  # it costs one more read at the next rescan, no more
            log.warning("ledger.write_failed", error=str(exc), ledger=self._ledger.where)

    def _sidecar_failed(
        self, item: Item, exc: SidecarError, digest: str, key: JobKey, held: source.Opened
    ) -> Outcome:
        ident = held.identity
        if exc.errno == errno.ENAMETOOLONG:  # no later try can fit it: say so, once
            name = Path(exc.filename or "").name
            reason = (
                f"sidecar name too long for its filesystem: {name} (shorten"
                " name_template, then dropscribe retry)"
            )
            return self._fail(item, PermanentError(reason), key, ident, held)
        self._ledger.record_file(
            item.path, item.inbox.name, ident, digest, key, FileState.ERROR, str(exc)
        )
        log.error("sidecar.failed", error=str(exc), will_retry=True)
        return Outcome.FAILED

    def _fail(
        self,
        item: Item,
        exc: TranscriptionError,
        key: JobKey | None = None,
        identity: tuple[int, int, int] | None = None,
        held: source.Opened | None = None,
    ) -> Outcome:
        verdicts.fail(self._ledger, item, exc, key, identity, held)
        return Outcome.FAILED

    @staticmethod
    def _skip(
        row: FileRow | None, digest: str, key: JobKey, settings: FolderSettings
    ) -> str | None:
        """Why this very content needs no new work, when the ledger has it done."""
        if row is None or row.fingerprint != digest:
            return None
        skip = rules.settled_before(row, settings, digest=digest)
        if skip is None and row.state == FileState.DONE and row.key != key:
            log.info("file.rerun", reason="settings changed")
        return skip

    @contextlib.contextmanager
    def _claimed(self, key: JobKey, path: Path) -> Iterator[Claim | None]:
        """The ledger's claim on ``key`` for the block; None when another host has it."""
        try:
            with self._ledger.hold(key, path) as claim:
                self._metrics.claims.labels("won").inc()
                yield claim
        except ClaimedElsewhere as exc:  # raised before the block, never from it
            self._metrics.claims.labels("elsewhere").inc()
            log.info("file.claimed_elsewhere", host=exc.host, lease_left=round(exc.seconds_left))
            yield None

    def _key_lock(self, key: JobKey) -> threading.Lock:
        with self._key_locks_guard:
            return self._key_locks.setdefault(key, threading.Lock())

    def _transcript(
        self,
        item: Item,
        settings: FolderSettings,
        key: JobKey,
        held: source.Opened,
        progress: Progress,
    ) -> tuple[Transcript, bool]:
        """The stored transcript of this content and settings, or a fresh upload (True)."""
        job, attempt = self._ledger.begin(
            item.path, item.inbox.name, held.identity, key, settings.shaping()
        )
        if job is not None and job.result is not None:
            log.info("transcript.reused", request_id=job.request_id)
            return Transcript.from_json(job.result, job.request_id), False
        if (paid := self._paid.get(key)) is not None:  # the ledger could not take it before
            log.info("transcript.reused", request_id=paid.request_id, kept="in memory")
            return paid, True
        progress.attempt = attempt
        found = probe.examine(held.content)
        log.info(
            "audio.probed", container=found.container, codec=found.codec, seconds=found.duration
        )
        for _ in range(MAX_REPLANS):
            try:
                return self._send(item, held, settings, key, attempt, found), True
            except Replan:
                continue  # what the server said changes how this file goes: decide again
        raise PermanentError("the endpoint kept refusing what each new plan asked for")

    def _send(
        self,
        item: Item,
        held: source.Opened,
        settings: FolderSettings,
        key: JobKey,
        attempt: int,
        found: probe.Probe,
    ) -> Transcript:
        """The file's transcript: one upload, re-encoded chunks, or short spans."""
        size = held.stat.st_size
        endpoint = self._uploader.client(settings.endpoint).endpoint
        caps = self._uploader.caps(settings.endpoint, settings.model)
        if endpoint.kind != "local" and settings.timed and caps.timed is None:
            log.info(
                "audio.spans",
                reason=f"model {settings.model} gives no timestamps;"
                " short spans place the text in time",
            )
            return self._chunker.transcribe(held.content, settings, key, spans=True)
        why = chunked.reason(found, endpoint, settings, item.path, size, caps)
        if why is None:
            try:
                return self._uploader.upload(
                    held.content,
                    settings,
                    key,
                    attempt,
                    size,
                    seconds=found.duration,
                    name=item.path.name,
                )
            except PermanentError as exc:
                if exc.status != 413:
                    raise
                # A gateway or server with a lower limit than max_upload_bytes says: never
                # the same bytes again, but compressed chunks may well fit.
                why = (
                    "the endpoint refused the whole file as too large (HTTP 413);"
                    " set max_upload_bytes to its limit"
                )
        log.info("audio.reencoding", reason=why)
        return self._chunker.transcribe(held.content, settings, key)

"""One settled file -> one upload (or a stored transcript) -> its sidecars.

This is the job each pool worker runs. It consults the ledger first, so a file
whose transcript exists is never uploaded again; it holds a per-job lock so the
same content under two names is uploaded once; and it marks a file done only
after its sidecars are durable on disk.
"""

from __future__ import annotations

import errno
import hashlib
import stat as statmod
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from dropscribe import audio, chunked, disposition, hooks, outputs, rules
from dropscribe.api import Client, Transcript
from dropscribe.errors import EndpointError, PermanentError, SidecarError, TranscriptionError
from dropscribe.local import LocalEngine
from dropscribe.metrics import Metrics
from dropscribe.uploader import Abandoned, Replan, Uploader

if TYPE_CHECKING:
    import os
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    import httpx

    from dropscribe.api import Transcriber
    from dropscribe.config import Endpoint, Inbox
    from dropscribe.journal import FileRow, Journal

log = structlog.get_logger("dropscribe")

MAX_REPLANS = 8  # each needs a new refusal learned: more than there are things to refuse


@dataclass(frozen=True)
class Item:
    inbox: Inbox = field(compare=False)
    path: Path


@dataclass
class Tally:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped

    def add(self, outcome: str) -> None:
        with self.lock:
            setattr(self, outcome, getattr(self, outcome) + 1)


def make_client(endpoint: Endpoint, transport: httpx.BaseTransport | None = None) -> Transcriber:
    """The transcriber for an endpoint: faster-whisper in-process, or the HTTP client."""
    if endpoint.kind == "local":
        return LocalEngine(endpoint)
    return Client(endpoint, transport=transport)


def fingerprint(path: Path) -> str:
    """sha256 of the content, read in chunks (memory stays flat for any size)."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def identity(st: os.stat_result) -> tuple[int, int, int]:
    """What tells one version of a file from another without reading it."""
    return (st.st_size, st.st_mtime_ns, st.st_ino)


class Processor:
    """Runs jobs; shared by every worker thread."""

    def __init__(
        self,
        journal: Journal,
        clients: dict[str, Transcriber],
        abort: threading.Event,
        *,
        once: bool = False,
        inbox_of: Callable[[Path], Inbox | None] | None = None,
        metrics: Metrics | None = None,
        key_lock: Callable[[str], AbstractContextManager[object]] | None = None,
        report: Callable[[Item, str | None], None] | None = None,
    ) -> None:
        self._journal = journal
        self._metrics = metrics or Metrics()
        # In `once` a paused endpoint fails its files (there is no later to wait for).
        self._uploader = Uploader(
            journal, clients, abort, wait_for_endpoints=not once, metrics=self._metrics
        )
        # Scratch audio of long recordings lives beside the ledger, in state_dir.
        self._chunker = chunked.Chunker(
            journal, self._uploader, journal.path.parent / "work", abort
        )
        self._inbox_of = inbox_of
        self._key_locks: dict[str, threading.Lock] = {}
        self._key_locks_guard = threading.Lock()
        self._key_lock_of = key_lock or self._key_lock
        self._report = report
        self.tally = Tally()

    def __call__(self, item: Item) -> None:
        structlog.contextvars.bind_contextvars(path=str(item.path), inbox=item.inbox.name)
        outcome = None
        try:
            outcome = self._process(item)
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
                else make_client(endpoint, transport)
                for name, endpoint in new.items()
            }
        )

    def _process(self, item: Item) -> str:
        path = item.path
        # The inbox as configured now (a reload may have changed it), else as queued.
        inbox = self._inbox_of(path) if self._inbox_of else None
        if inbox is not None and inbox.path == item.inbox.path:
            item = Item(inbox, path)
        settings = rules.effective(item.inbox, path)
        try:
            st = path.stat() if item.inbox.follow_symlinks else path.lstat()
            if not statmod.S_ISREG(st.st_mode):
                kind = "symbolic link" if statmod.S_ISLNK(st.st_mode) else "not a regular file"
                log.info("file.ignored", reason=kind)
                return "skipped"
            row = self._journal.file(path)
            if row is not None and (row.size, row.mtime_ns, row.inode) == identity(st):
                digest = row.fingerprint
            else:
                digest = fingerprint(path)
                if identity(path.stat()) != identity(st):
                    log.info("file.changed", reason="written to while being read")
                    return "skipped"
        except FileNotFoundError:
            log.info("file.vanished")
            return "skipped"
        except OSError as exc:
            return self._fail(item, PermanentError(f"cannot read file: {exc.strerror or exc}"))
        key = f"{digest}:{settings.shaping_hash()}"
        if skip := self._skip(row, digest, key, settings):
            log.info("file.skipped", reason=skip)
            return "skipped"
        # Held until the transcript is stored: a copy of this content waits, then reuses it.
        with self._key_lock_of(key):
            try:
                transcript, fresh = self._transcript(item, settings, key, identity(st))
            except EndpointError as exc:  # only in `once`: the endpoint, not the file
                self._journal.record_file(
                    path, item.inbox.name, identity(st), digest, key, "error", exc.message
                )
                log.error("file.failed", error=exc.message, status=exc.status, quarantined=False)
                return "failed"
            except TranscriptionError as exc:
                return self._fail(item, exc, key, identity(st))
            except OSError as exc:  # scratch audio under state_dir (a full disk): not the file
                error = f"cannot write scratch audio: {exc.strerror or exc}"
                self._journal.record_file(
                    path, item.inbox.name, identity(st), digest, key, "error", error
                )
                log.error("audio.scratch_failed", error=error, will_retry=True)
                return "failed"
            try:
                written = outputs.write(
                    self._journal,
                    item.inbox,
                    item.path,
                    settings,
                    transcript,
                    key if fresh else None,
                )
            except SidecarError as exc:
                return self._sidecar_failed(item, exc, digest, key, identity(st))
        moved = self._after(item, settings.after)
        self._journal.file_done(path, [f.value for f in settings.formats], written)
        log.info(
            "file.done", outputs=[str(p) for p in written], moved_to=str(moved) if moved else None
        )
        self._hook(settings, item, "done", written, moved=moved)
        return "done"

    def _sidecar_failed(
        self, item: Item, exc: SidecarError, digest: str, key: str, ident: tuple[int, int, int]
    ) -> str:
        if exc.errno == errno.ENAMETOOLONG:  # no later try can fit it: say so, once
            name = Path(exc.filename or "").name
            reason = (
                f"sidecar name too long for its filesystem: {name} (shorten"
                " name_template, then dropscribe retry)"
            )
            return self._fail(item, PermanentError(reason), key, ident)
        self._journal.record_file(item.path, item.inbox.name, ident, digest, key, "error", str(exc))
        log.error("sidecar.failed", error=str(exc), will_retry=True)
        return "failed"

    @staticmethod
    def _hook(
        settings: rules.FolderSettings,
        item: Item,
        outcome: str,
        sidecars: list[Path],
        *,
        moved: Path | None = None,
        error: str | None = None,
    ) -> None:
        if settings.hook is None:
            return
        hooks.run(
            settings.hook,
            {
                "file": str(item.path),
                "inbox": item.inbox.name,
                "outcome": outcome,
                "sidecars": [str(p) for p in sidecars],
                "moved_to": str(moved) if moved else None,
                "error": error,
            },
        )

    def _after(self, item: Item, action: str) -> Path | None:
        try:
            return disposition.after_success(item.path, item.inbox, action)
        except OSError as exc:
            log.warning("file.after_failed", after=action, error=exc.strerror or str(exc))
            return None

    def _fail(
        self,
        item: Item,
        exc: TranscriptionError,
        key: str | None = None,
        identity: tuple[int, int, int] | None = None,
    ) -> str:
        """Quarantine the recording with its reason; it is never picked up again by itself."""
        report = {
            "reason": exc.message,
            "status": exc.status,
            "request_id": exc.request_id,
            "attempts": exc.attempts,
            "key": key,
        }
        try:
            target = disposition.quarantine(item.path, item.inbox, report)
        except OSError as err:
            target = None
            log.error("file.quarantine_failed", error=err.strerror or str(err))
        if key is not None and identity is not None:
            self._journal.record_file(
                item.path,
                item.inbox.name,
                identity,
                key.split(":", 1)[0],
                key,
                "failed",
                exc.message,
            )
        log.error(
            "file.failed",
            error=exc.message,
            status=exc.status,
            request_id=exc.request_id,
            quarantined=str(target) if target else None,
        )
        self._hook(
            rules.effective(item.inbox, item.path),
            item,
            "failed",
            [],
            moved=target,
            error=exc.message,
        )
        return "failed"

    @staticmethod
    def _skip(
        row: FileRow | None, digest: str, key: str, settings: rules.FolderSettings
    ) -> str | None:
        """Why this very content needs no new work, when the ledger has it done."""
        if row is None or row.state != "done" or row.fingerprint != digest:
            return None
        skip = rules.done_reason(row.key, row.formats, settings)
        if skip is None and row.key != key:
            log.info("file.rerun", reason="settings changed")
        return skip

    def _key_lock(self, key: str) -> threading.Lock:
        with self._key_locks_guard:
            return self._key_locks.setdefault(key, threading.Lock())

    def _transcript(
        self, item: Item, settings: rules.FolderSettings, key: str, identity: tuple[int, int, int]
    ) -> tuple[Transcript, bool]:
        """The stored transcript of this content and settings, or a fresh upload (True)."""
        job, attempt = self._journal.begin(
            item.path, item.inbox.name, identity, key, settings.shaping()
        )
        if job is not None and job.result is not None:
            log.info("transcript.reused", request_id=job.request_id)
            return Transcript.from_json(job.result, job.request_id), False
        found = audio.probe(item.path)
        log.info(
            "audio.probed", container=found.container, codec=found.codec, seconds=found.duration
        )
        for _ in range(MAX_REPLANS):
            try:
                return self._send(item, settings, key, attempt, found, identity[0]), True
            except Replan:
                continue  # what the server said changes how this file goes: decide again
        raise PermanentError("the endpoint kept refusing what each new plan asked for")

    def _send(
        self,
        item: Item,
        settings: rules.FolderSettings,
        key: str,
        attempt: int,
        found: audio.Probe,
        size: int,
    ) -> Transcript:
        """The file's transcript: one upload, re-encoded chunks, or short spans."""
        endpoint = self._uploader.client(settings.endpoint).endpoint
        caps = self._uploader.caps(settings.endpoint, settings.model)
        if endpoint.kind != "local" and settings.timed and caps.timed is None:
            log.info(
                "audio.spans",
                reason=f"model {settings.model} gives no timestamps;"
                " short spans place the text in time",
            )
            return self._chunker.transcribe(item.path, settings, key, spans=True)
        why = chunked.reason(found, endpoint, settings, item.path, size, caps)
        if why is None:
            try:
                return self._uploader.upload(
                    item.path, settings, key, attempt, size, seconds=found.duration
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
        return self._chunker.transcribe(item.path, settings, key)

"""A recording the endpoint cannot take as it is: re-encode, cut at pauses, stitch.

A file within the endpoint's limits, in a format it accepts and without a picture track, is
uploaded untouched. Anything else is decoded to mono 16 kHz and re-encoded compactly (Opus by
default); a recording longer than the folder's ``chunk_seconds`` (or than the endpoint takes in one
request) is cut into chunks at pauses. Chunks run in parallel under the endpoint's concurrency
limit, or in order with the end of the previous chunk's text as the prompt (``carry_prompt``). The
plan and every finished chunk are checkpointed in the ledger, so a crash redoes only unfinished
chunks. Scratch audio lives under ``state_dir/work`` and is removed after success and failure.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import os
import queue
import shutil
import threading
import time
from typing import TYPE_CHECKING

import structlog

from dropscribe import speakers
from dropscribe.audio import split, stitch, transcode
from dropscribe.errors import Abandoned, LedgerGaveUp, Replan, TranscriptionError
from dropscribe.jobs import voiceprints
from dropscribe.ledger.interface import WRITE_FAILED, Checkpoints
from dropscribe.ops import progress
from dropscribe.transcribe import kinds
from dropscribe.transcript import Transcript, bounded
from dropscribe.vocab.states import JobKey, JobState

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.transcribe.models import Caps
    from dropscribe.transcribe.uploader import Uploader
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings

log = structlog.get_logger("dropscribe")

FILL = 0.9  # of the byte limit a chunk is planned to use, for bitrate swings
# Spans, for a model without timestamps: cut at pauses about every 20 s (30 s at most),
# each span's text is placed between its first and last sound and divided into cues.
SPAN_SECONDS, SPAN_LONGEST = 20.0, 30.0
# An answer from a model with an output cap (gpt-4o: 2,000 tokens) with fewer than 40
# words a minute of sound (speech has 120-190), over at least 30 s of sound, looks cut
# short. Music or noise without words looks the same: it costs one more pair of requests.
SUSPECT_WPM, SUSPECT_SOUND = 40.0, 30.0


def lengths(
    endpoint: Endpoint,
    settings: FolderSettings,
    codec: transcode.Codec,
    caps: Caps,
    *,
    spans: bool = False,
) -> tuple[float, float]:
    """The chunk length to aim for and the longest chunk the endpoint takes, in seconds
    (for ``spans``, at the scale of subtitles)."""
    longest = caps.request_seconds or math.inf
    limit = kinds.upload_limit(endpoint)
    if limit is not None:
        longest = min(longest, limit * FILL / codec.bytes_per_second)
    if spans:
        return min(SPAN_SECONDS, longest), min(SPAN_LONGEST, longest)
    return min(settings.chunk_seconds, longest), longest


class Chunker:
    """Runs the chunked path for one file at a time per calling worker thread."""

    def __init__(
        self, ledger: Checkpoints, uploader: Uploader, scratch: Path, abort: threading.Event
    ) -> None:
        self._ledger = ledger
        self._uploader = uploader
        self._scratch = scratch
        self._abort = abort
        self._encoders = threading.Semaphore(os.cpu_count() or 1)

    def transcribe(
        self, path: Path, settings: FolderSettings, key: JobKey, *, spans: bool = False
    ) -> Transcript:
        """The stitched transcript of ``path``; scratch audio is gone when this returns.

        With ``spans``, for a model without timestamps: short spans, sent without asking
        for times, each span's text placed at its sound."""
        work = self._scratch / f"{key.digest}-{key.shaping}"
        shutil.rmtree(work, ignore_errors=True)
        private_folder(self._scratch)
        work.mkdir(mode=0o700)
        try:
            return self._run(path, settings, key, work, spans)
        except Replan:
            self._ledger.save_plan(key, [])  # made for what the server no longer takes
            raise
        except TranscriptionError as exc:
            self._ledger.job_failed(key, exc.message, exc.status, exc.request_id, JobState.FAILED)
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _run(
        self, path: Path, settings: FolderSettings, key: JobKey, work: Path, spans: bool
    ) -> Transcript:
        endpoint = self._uploader.client(settings.endpoint).endpoint
        caps = self._uploader.caps(settings.endpoint, settings.model)
        codec = transcode.CODECS[kinds.audio_codec(endpoint)]
        started = time.monotonic()
        decoded = transcode.decode(path, work / "audio.pcm")
        log.info(
            "audio.decoded",
            seconds=round(decoded.seconds, 3),
            ms=round((time.monotonic() - started) * 1000),
        )
        if decoded.truncated:
            log.warning(
                "audio.truncated",
                reason=decoded.truncated,
                seconds=round(decoded.seconds, 3),
                action="transcribing the audio before the damage",
            )
        rows = self._ledger.chunk_plan(key)
        if rows:
            cuts = [split.Span(r.start, r.end, r.cut, r.pause) for r in rows]
        else:
            target, longest = lengths(endpoint, settings, codec, caps, spans=spans)
            width = 1 if settings.carry_prompt else endpoint.max_concurrency
            overlap = (
                voiceprints.OVERLAP if voiceprints.overlapped(endpoint, settings) else split.OVERLAP
            )
            cuts = split.plan(
                decoded.envelope, decoded.seconds, target, longest, parallel=width, overlap=overlap
            )
            self._ledger.save_plan(key, [(s.start, s.end, s.cut, s.pause) for s in cuts])
        log.info(
            "audio.split",
            chunks=len(cuts),
            codec=codec.name,
            spans=spans,
            cuts=[s.cut for s in cuts[1:]],
            outside_pauses=sum(not s.pause for s in cuts[1:]),
        )
        results = {
            row.idx: Transcript.from_json(row.result, row.request_id)
            for row in rows
            if row.result is not None
        }
        if results:
            log.info("chunks.reused", done=len(results), of=len(cuts))
        todo = [i for i in range(len(cuts)) if i not in results]
        progress.planned(len(cuts), decoded.seconds, [cuts[i].seconds for i in results])
        level = split.threshold(decoded.envelope)
        rec = _Recording(settings, key, work, codec, decoded, cuts, spans, level, caps)
        self._chunks(rec, todo, results, endpoint)
        parts = [(cuts[i], results[i]) for i in range(len(cuts))]
        if voiceprints.overlapped(endpoint, settings):
            parts = list(zip(cuts, voiceprints.matched(parts), strict=True))
        if not spans:
            return stitch.stitch(parts, decoded.seconds)
        return stitch.stitch(
            parts,
            decoded.seconds,
            place=lambda span: split.voiced(decoded.envelope, level, span.cut, span.end),
        )

    def _chunks(
        self, rec: _Recording, todo: list[int], results: dict[int, Transcript], endpoint: Endpoint
    ) -> None:
        """Transcribe the chunks ``todo`` into ``results``: one at a time when each
        carries the text before it, else in parallel; with speakers on OpenAI, the first
        alone, its voices then lent to the others (``voiceprints``)."""
        lent = voiceprints.wanted(endpoint, rec.settings, len(rec.spans))
        if lent:
            if 0 in todo:
                results[0] = self._chunk(rec, 0, rec.settings)
                todo.remove(0)
            later = voiceprints.lend(
                results[0], rec.spans[0], rec.decoded.pcm, rec.settings, rec.work / "voices"
            )
            rec = dataclasses.replace(rec, settings=later)
        settings = rec.settings
        if settings.carry_prompt:
            for i in todo:
                prompt = settings.prompt
                if i > 0:
                    prompt = stitch.carried_prompt(settings.prompt, results[i - 1].text)
                carried = settings.model_copy(update={"prompt": prompt or None})
                results[i] = self._chunk(rec, i, carried)
        elif todo:
            self._parallel(rec, todo, results, endpoint.max_concurrency)
        if lent:
            taken = set(speakers.labels(results[0]))
            for i in range(1, len(rec.spans)):
                results[i] = voiceprints.relabel(results[i], taken)

    def _parallel(
        self, rec: _Recording, todo: list[int], results: dict[int, Transcript], width: int
    ) -> None:
        """Chunks at once: ``width`` uploading while two more are encoded ahead. The first
        failure stops chunks from starting (those in flight finish and are kept); of the
        failures, the earliest chunk's is raised, so a run says the same thing each time.

        Daemon threads, like the pool's: a stop after the grace period does not wait
        for a chunk still uploading (its checkpoint is simply not written)."""
        pending: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i in todo:
            pending.put(i)
        done: queue.SimpleQueue[tuple[int, Transcript | BaseException]] = queue.SimpleQueue()
        stop = threading.Event()

        def work() -> None:
            while not stop.is_set():
                try:
                    i = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    done.put((i, self._chunk(rec, i, rec.settings)))
                except BaseException as exc:
                    stop.set()
                    done.put((i, exc))

        threads = [
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(work,),
                name=f"dropscribe-chunk-{n}",
                daemon=True,
            )
            for n in range(min(width + 2, len(todo)))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        failures: dict[int, BaseException] = {}
        while not done.empty():
            i, outcome = done.get()
            if isinstance(outcome, BaseException):
                failures[i] = outcome
            else:
                results[i] = outcome
        if failures:  # the earliest chunk's, whichever failed first in time
            raise failures[min(failures)]

    def _chunk(self, rec: _Recording, i: int, settings: FolderSettings) -> Transcript:
        if self._abort.is_set():
            raise Abandoned
        span = rec.spans[i]
        where = f"chunk {i + 1} of {len(rec.spans)} ({_clock(span.start)}-{_clock(span.end)})"
        with structlog.contextvars.bound_contextvars(chunk=i + 1):
            try:
                transcript, size = self._sent(rec, i, settings, span.start, span.end)
            except TranscriptionError as exc:
                exc.message = f"{where}: {exc.message}"
                raise
            if self._truncated(rec, span, transcript):
                transcript = self._in_halves(rec, i, settings, transcript)
            try:  # a checkpoint; the chunk's transcript itself goes on in memory
                self._ledger.chunk_done(rec.key, i, transcript.to_json(), transcript.request_id)
            except LedgerGaveUp:  # the daemon is stopping: no later write would be had either
                raise  # Abandoned: the chunk is sent again at the next start
            except WRITE_FAILED as exc:
                log.error("ledger.write_failed", error=str(exc), ledger=self._ledger.where)
            log.info(
                "chunk.done",
                of=len(rec.spans),
                offset=span.start,
                seconds=round(span.seconds, 3),
                bytes=size,
            )
        progress.chunk_done(span.seconds)
        return transcript

    def _sent(
        self,
        rec: _Recording,
        i: int,
        settings: FolderSettings,
        start: float,
        end: float,
        suffix: str = "",
    ) -> tuple[Transcript, int]:
        """Chunk ``i``'s audio from ``start`` to ``end`` encoded into scratch, uploaded as
        one counted attempt of the chunk, and removed; its transcript and size."""
        target = rec.work / f"{i:04d}{suffix}.{rec.codec.extension}"
        with self._encoders:  # CPU-bound: no more at once than there are cores
            size = transcode.encode(rec.decoded.pcm, start, end, target, rec.codec)
        try:
            ckey = rec.key.of_chunk(i)
            attempt = self._ledger.chunk_attempt(ckey, settings.shaping())
            transcript = self._uploader.upload(
                target,
                settings,
                ckey,
                attempt,
                size,
                seconds=end - start,
                timed=False if rec.untimed else None,
            )
            # attack20: held to the chunk's own length before it is checkpointed (an
            # answer is held only to its own claims as it is read: a hostile server's
            # megabytes per chunk went into the ledger before the whole was refused)
            transcript = bounded(transcript, end - start)
        finally:
            with contextlib.suppress(OSError):
                target.unlink()
        return transcript, size

    def _truncated(self, rec: _Recording, span: split.Span, transcript: Transcript) -> bool:
        """Whether an answer from a model with an output cap looks cut short: far fewer
        words than a minute of its span's sound holds."""
        if rec.caps.output_seconds is None or rec.untimed:  # a span holds far less than that
            return False
        sound = split.sound_seconds(rec.decoded.envelope, rec.level, span.start, span.end)
        words = len(transcript.text.split())
        if sound < SUSPECT_SOUND or words / (sound / 60) >= SUSPECT_WPM:
            return False
        log.warning(
            "transcript.suspect_truncation",
            words=words,
            sound_seconds=round(sound),
            offset=span.start,
            seconds=round(span.seconds, 3),
            action="sending the span again cut in two",
        )
        return True

    def _in_halves(
        self, rec: _Recording, i: int, settings: FolderSettings, first: Transcript
    ) -> Transcript:
        """The span sent again as two halves cut at a pause; the answer with more words."""
        span = rec.spans[i]
        lo, hi = round(span.start / split.FRAME), round(span.end / split.FRAME)
        halves = split.plan(
            rec.decoded.envelope[lo:hi], span.seconds, span.seconds / 2, span.seconds
        )
        parts = []
        for n, half in enumerate(halves):
            start, end = span.start + half.start, span.start + half.end
            part, _ = self._sent(rec, i, settings, start, end, f"-{n}")
            parts.append((half, part))
        whole = stitch.stitch(parts, span.seconds)
        log.info(
            "transcript.rejoined",
            halves=len(parts),
            words=len(whole.text.split()),
            before=len(first.text.split()),
        )
        return whole if len(whole.text.split()) > len(first.text.split()) else first


@dataclasses.dataclass(frozen=True)
class _Recording:
    """One recording sent in chunks: what every chunk of it shares."""

    settings: FolderSettings
    key: JobKey
    work: Path
    codec: transcode.Codec
    decoded: transcode.Decoded
    spans: list[split.Span]
    untimed: bool  # spans of a model without timestamps
    level: float  # the loudness under which the recording is quiet (split.threshold)
    caps: Caps  # what the model takes, when the plan was made


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def private_folder(folder: Path) -> None:
    """``folder`` (its parent made) is 0700 whatever the umask: the scratch copies of
    recordings under it are no one else's to list or read (under umask 000 it was 0777).
    One already there (made under the umask by an older dropscribe, or by a track's
    scratch) is tightened when it is ours, and never through a link."""
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return  # a link the user made: theirs to keep; the job's folder in it is 0700
    try:
        found = os.fstat(fd)
        if found.st_uid == os.geteuid() and found.st_mode & 0o077:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)

"""How a job's file is sent for a fresh transcript: one upload of the file as it is,
re-encoded chunks, or short spans (for a model without timestamps when its words cannot
be timed on this machine); decided again when what a server said (``Replan``) changes
how the file can go. Where a sidecar needs times, an answer without word times has its
own words timed locally (``timing``), and word times from any engine are snapped to
the speech."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from dropscribe.errors import EndpointError, PermanentError, Replan
from dropscribe.jobs import chunked
from dropscribe.ops import progress
from dropscribe.timing import heard, timed
from dropscribe.vocab.settings import Format

if TYPE_CHECKING:
    from dropscribe.audio.probe import Probe
    from dropscribe.jobs.job import Job
    from dropscribe.transcribe.models import Caps
    from dropscribe.transcribe.uploader import Uploader
    from dropscribe.transcript import Transcript
    from dropscribe.vocab.endpoints import Endpoint

log = structlog.get_logger("dropscribe")

MAX_REPLANS = 8  # each needs a new refusal learned: more than there are things to refuse


class Planner:
    """Sends a job's file the way that fits it and its endpoint as now known."""

    def __init__(self, uploader: Uploader, chunker: chunked.Chunker) -> None:
        self._uploader = uploader
        self._chunker = chunker

    def transcribe(self, job: Job, found: Probe) -> Transcript:
        """The file's fresh transcript (``found``: what probing it found)."""
        for _ in range(MAX_REPLANS):
            try:
                with progress.Told(found.duration):  # file.progress, where the engine counts
                    answer = self._send(job, found)
            except Replan:
                continue  # what the server said changes how this file goes: decide again
            return _believed(job, answer)
        raise PermanentError("the endpoint kept refusing what each new plan asked for")

    def _send(self, job: Job, found: Probe) -> Transcript:
        """Short spans when times are needed that neither the model nor this machine can
        give; else the file sent as it can go, then its words timed or sharpened here."""
        settings = job.settings
        endpoint = self._uploader.client(settings.endpoint).endpoint
        caps = self._uploader.caps(settings.endpoint, settings.model)
        remote = endpoint.kind != "local"
        if remote and settings.timed and caps.timed is None:
            if (why_not := timed.unusable(settings)) is not None:
                return self._spans(job, why_not)
            untimed = True
        else:  # a model that takes the language only without timestamps (Voxtral 3,
            # PROTOCOL.md 7.3): asked without them where the words are timed here anyway
            untimed = (
                remote
                and settings.timed
                and bool(settings.language)
                and not caps.language_with_times
                and not settings.speakers
                and timed.unusable(settings) is None
            )
        answer = self._sent(job, found, untimed=untimed)
        if not settings.timed or not answer.text.strip():
            return answer
        if answer.words:
            return self._snapped(job, answer)
        if endpoint.kind == "local" or _worded(endpoint, caps):
            return answer  # segment times from an engine that gives words when asked
        if (why_not := timed.unusable(settings, answer.language)) is not None:
            if untimed:  # the language became known with the answer
                return self._spans(job, why_not)
            return answer  # the engine's segment times, as it gave them
        return self._aligned(job, answer, untimed=untimed)

    def _spans(self, job: Job, why_not: str) -> Transcript:
        """Short spans, each one's text placed at its sound."""
        settings = job.settings
        log.info(
            "audio.spans",
            reason=f"model {settings.model} gives no timestamps and its words cannot be"
            f" timed on this machine ({why_not}); short spans place the text in time",
        )
        held, key = job.known()
        return self._chunker.transcribe(held.content, settings, key, spans=True)

    def _aligned(self, job: Job, answer: Transcript, *, untimed: bool) -> Transcript:
        """The answer's own words timed on this machine; where that cannot be done, spans
        for an ``untimed`` model, else the answer's segment times as they came."""
        held, _ = job.known()
        try:
            pcm = timed.decoded(held.content)
            return timed.aligned(answer, pcm, timed.model_of(job.settings))
        except (EndpointError, PermanentError) as exc:
            action = "sending short spans" if untimed else "keeping the answer's segment times"
            log.warning("timing.failed", error=exc.message, action=action)
            return self._spans(job, exc.message) if untimed else answer

    def _snapped(self, job: Job, answer: Transcript) -> Transcript:
        """The engine's word times snapped to the speech."""
        held, _ = job.known()
        try:
            return timed.snapped(answer, timed.decoded(held.content))
        except PermanentError as exc:
            log.warning("timing.failed", error=exc.message, action="keeping the engine's times")
            return answer

    def _sent(self, job: Job, found: Probe, *, untimed: bool) -> Transcript:
        """The file as one upload, or as re-encoded chunks where it cannot go as it is;
        ``untimed``: asking for no times (the model gives none; they are had here)."""
        held, key = job.known()
        settings, content, size = job.settings, held.content, held.stat.st_size
        endpoint = self._uploader.client(settings.endpoint).endpoint
        caps = self._uploader.caps(settings.endpoint, settings.model)
        why = chunked.reason(found, endpoint, settings, job.path, size, caps)
        if why is None:
            try:
                return self._uploader.upload(
                    content,
                    settings,
                    key,
                    job.attempt,
                    size,
                    seconds=found.duration,
                    name=job.path.name,
                    timed=False if untimed else None,
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
        if untimed:  # each chunk asked as for a text sidecar: the times are had here
            settings = settings.model_copy(update={"formats": (Format.TXT,), "speakers": False})
        return self._chunker.transcribe(content, settings, key)


def _believed(job: Job, answer: Transcript) -> Transcript:
    """``answer``; an empty one only where the recording holds no speech (PermanentError)."""
    if answer.text.strip():
        return answer
    held, _ = job.known()
    if (why := heard.empty_answer(held.content)) is not None:
        raise why
    return answer


def _worded(endpoint: Endpoint, caps: Caps) -> bool:
    """Whether the model answers with word times when asked for them (Mistral's Voxtral
    gives segment times only; a diarizing model, speakers' segments)."""
    return caps.timed == "verbose_json" and caps.granularities and endpoint.kind != "mistral"

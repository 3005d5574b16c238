"""How a job's file is sent for a fresh transcript, carried out: the facts gathered, the
plan decided (``decide``: one upload of the file as it is, re-encoded chunks, or short
spans), and gathered and decided again when what a server said (``Replan``, or HTTP 413
to a whole upload) changes them. Where a sidecar needs times, an answer without word
times has its own words timed locally (``timing``), and word times from any engine are
snapped to the speech."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import structlog

from dropscribe.errors import EndpointError, PermanentError, Replan
from dropscribe.jobs import decide as decided
from dropscribe.jobs.decide import Facts, How, Plan, Then
from dropscribe.ops import progress
from dropscribe.timing import heard, timed
from dropscribe.transcribe import kinds, models
from dropscribe.vocab.settings import Format

if TYPE_CHECKING:
    import threading
    from pathlib import Path

    from dropscribe.audio.probe import Probe
    from dropscribe.jobs.chunked import Chunker
    from dropscribe.jobs.job import Job
    from dropscribe.transcribe.models import Caps
    from dropscribe.transcribe.uploader import Uploader
    from dropscribe.transcript import Transcript
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings

log = structlog.get_logger("dropscribe")

MAX_REPLANS = 8  # each needs a new refusal learned: more than there are things to refuse


class _TooLarge(Exception):  # noqa: N818 - a signal within this module, not an error
    """The whole file was refused as too large (HTTP 413): a fact for the next plan."""


class Planner:
    """Sends a job's file the way that fits it and its endpoint as now known."""

    def __init__(
        self, uploader: Uploader, chunker: Chunker, abort: threading.Event | None = None
    ) -> None:
        self._uploader = uploader
        self._chunker = chunker
        self._abort = abort  # set when the daemon stops: local timing ends between windows

    def transcribe(self, job: Job, found: Probe) -> Transcript:
        """The file's fresh transcript (``found``: what probing it found)."""
        refused = False
        for _ in range(MAX_REPLANS):
            facts = self._facts(job, found, whole_refused=refused)
            try:
                with progress.Told(found.duration):  # file.progress, where the engine counts
                    answer = self._carried(job, found, facts, decided.decide(facts))
            except Replan:
                continue  # what the server said changes how this file goes: decide again
            except _TooLarge:
                refused = True  # never the same bytes again: decide again knowing it
                continue
            return _believed(job, answer)
        raise PermanentError("the endpoint kept refusing what each new plan asked for")

    def _facts(self, job: Job, found: Probe, *, whole_refused: bool = False) -> Facts:
        """What is known now of the job's file, its endpoint and its model."""
        settings = job.settings
        endpoint = self._uploader.client(settings.endpoint).endpoint
        caps = self._uploader.caps(settings.endpoint, settings.model)
        held, _ = job.known()
        facts = facts_of(found, endpoint, settings, held.sent, held.size, caps)
        if decided.asks_timing(facts):
            facts = dataclasses.replace(facts, timing_unusable=timed.unusable(settings))
        return dataclasses.replace(facts, whole_refused=whole_refused)

    def _carried(self, job: Job, found: Probe, facts: Facts, plan: Plan) -> Transcript:
        """``plan`` carried out; then the answer's words timed or sharpened here."""
        if plan.how is How.SPANS:
            return self._spans(job, plan.reason or "")
        answer = self._sent(job, found, plan)
        text, words = bool(answer.text.strip()), bool(answer.words)
        unusable = None
        if decided.asks_timing_after(facts, text=text, words=words):
            unusable = timed.unusable(job.settings, answer.language)
        finish = decided.after(facts, plan, text=text, words=words, unusable=unusable)
        if finish.then is Then.SNAP:
            return self._snapped(job, answer)
        if finish.then is Then.SPANS:
            return self._spans(job, finish.reason or "")
        if finish.then is Then.ALIGN:
            return self._aligned(job, answer, untimed=plan.untimed)
        return answer

    def _spans(self, job: Job, reason: str) -> Transcript:
        """Short spans, each one's text placed at its sound."""
        log.info("audio.spans", reason=reason)
        held, key = job.known()
        return self._chunker.transcribe(held.content, job.settings, key, spans=True)

    def _aligned(self, job: Job, answer: Transcript, *, untimed: bool) -> Transcript:
        """The answer's own words timed on this machine; where that cannot be done, spans
        for an ``untimed`` model, else the answer's segment times as they came."""
        held, _ = job.known()
        try:
            pcm = timed.decoded(held.content, self._abort)
            return timed.aligned(answer, pcm, timed.model_of(job.settings), self._abort)
        except (EndpointError, PermanentError) as exc:
            action = "sending short spans" if untimed else "keeping the answer's segment times"
            log.warning("timing.failed", error=exc.message, action=action)
            if not untimed:
                return answer
            return self._spans(job, decided.spans_reason(job.settings.model, exc.message))

    def _snapped(self, job: Job, answer: Transcript) -> Transcript:
        """The engine's word times snapped to the speech."""
        held, _ = job.known()
        try:
            return timed.snapped(answer, timed.decoded(held.content, self._abort))
        except PermanentError as exc:
            log.warning("timing.failed", error=exc.message, action="keeping the engine's times")
            return answer

    def _sent(self, job: Job, found: Probe, plan: Plan) -> Transcript:
        """The file as one upload, or as re-encoded chunks (``plan``); ``_TooLarge`` when
        the endpoint refuses the whole file as too large."""
        held, key = job.known()
        settings, content = job.settings, held.content
        if plan.how is How.WHOLE:
            try:
                return self._uploader.upload(
                    content,
                    settings,
                    key,
                    job.attempt,
                    held.size,
                    seconds=found.duration,
                    name=held.sent.name,
                    timed=False if plan.untimed else None,
                )
            except PermanentError as exc:
                if exc.status != 413:
                    raise
                raise _TooLarge from exc
        log.info("audio.reencoding", reason=plan.reason)
        if plan.untimed:  # each chunk asked for its text alone: the times are had here
            settings = settings.model_copy(update={"formats": (Format.JSON,), "speakers": False})
        return self._chunker.transcribe(content, settings, key)


def facts_of(
    found: Probe,
    endpoint: Endpoint,
    settings: FolderSettings,
    path: Path,
    size: int,
    caps: Caps | None = None,
) -> Facts:
    """The facts ``decide`` plans from but local timing's and refusals (``caps``: the
    model as now known; else its table)."""
    caps = caps or models.of(endpoint, settings.model)
    extension = path.suffix.lower().lstrip(".")
    return Facts(
        kind=endpoint.kind,
        model=settings.model,
        size=size,
        extension=extension,
        accepted=kinds.accepts(endpoint, extension),
        upload_limit=kinds.upload_limit(endpoint),
        duration=found.duration,
        video=found.video,
        cut=found.cut,
        request_seconds=caps.request_seconds,
        timed=settings.timed,
        paced=settings.paced,
        language=bool(settings.language),
        speakers=bool(settings.speakers),
        gives_times=caps.timed,
        granularities=caps.granularities,
        language_with_times=caps.language_with_times,
    )


def reason(
    found: Probe,
    endpoint: Endpoint,
    settings: FolderSettings,
    path: Path,
    size: int,
    caps: Caps | None = None,
) -> str | None:
    """Why this file (``size`` bytes) cannot be uploaded as it is; None when it can."""
    return decided.reencoding(facts_of(found, endpoint, settings, path, size, caps))


def _believed(job: Job, answer: Transcript) -> Transcript:
    """``answer``; an empty one only where the recording holds no speech (PermanentError)."""
    if answer.text.strip():
        return answer
    held, _ = job.known()
    if (why := heard.empty_answer(held.content)) is not None:
        raise why
    return answer

"""How a job's file is sent for a fresh transcript: one upload of the file as it is,
re-encoded chunks, or short spans (for a model without timestamps); decided again
when what a server said (``Replan``) changes how the file can go."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from dropscribe.errors import PermanentError, Replan
from dropscribe.jobs import chunked
from dropscribe.ops import progress

if TYPE_CHECKING:
    from dropscribe.audio.probe import Probe
    from dropscribe.jobs.job import Job
    from dropscribe.transcribe.uploader import Uploader
    from dropscribe.transcript import Transcript

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
                    return self._send(job, found)
            except Replan:
                continue  # what the server said changes how this file goes: decide again
        raise PermanentError("the endpoint kept refusing what each new plan asked for")

    def _send(self, job: Job, found: Probe) -> Transcript:
        """One upload, re-encoded chunks, or short spans."""
        held, key = job.known()
        settings, content, size = job.settings, held.content, held.stat.st_size
        endpoint = self._uploader.client(settings.endpoint).endpoint
        caps = self._uploader.caps(settings.endpoint, settings.model)
        if endpoint.kind != "local" and settings.timed and caps.timed is None:
            log.info(
                "audio.spans",
                reason=f"model {settings.model} gives no timestamps;"
                " short spans place the text in time",
            )
            return self._chunker.transcribe(content, settings, key, spans=True)
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
        return self._chunker.transcribe(content, settings, key)

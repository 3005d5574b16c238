"""The language first, then the settings: a recording's language heard before the
settings it is transcribed with are chosen, so that a rule can match it.

A folder whose ``language:`` is a list or ``auto``, or whose rules match a language,
has its recordings' language detected on this machine (``transcribe/detect.py``) by
a multilingual faster-whisper model: ``language_model:``, else the folder's own model
when its endpoint is ``kind: local``. The language found is then forced, and the rules
by it apply. Speech surely in a language the folder does not take is not transcribed:
``Unexpected`` (the file waits). Without a model to detect with, ``gpt-transcribe``
gets the list as ``languages[]``, other kinds no language, and the answer's language
is checked against the list (``believed``).

Each audio track a folder chooses (``audio_track:``) is heard on its own: ``settled``
with ``track`` (``jobs/tracks.py``, that stream's audio only); the file as a whole is
then not heard (``track`` None, a folder that chooses tracks). What a detector heard is
kept in the ledger (``ledger/heard.py``) by the content and the track: a file waiting
with ``language.unexpected`` is decided again at each rescan from that, not heard again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from dropscribe.config import rules
from dropscribe.errors import PermanentError
from dropscribe.ledger.interface import WRITE_FAILED
from dropscribe.transcribe import detect
from dropscribe.vocab import language
from dropscribe.vocab import tracks as choosing

if TYPE_CHECKING:
    from dropscribe.jobs.job import Job
    from dropscribe.ledger.heard import Found, Heard
    from dropscribe.transcribe.uploader import Uploader
    from dropscribe.transcript import Transcript
    from dropscribe.vocab.settings import FolderSettings

log = structlog.get_logger("dropscribe")


class Unexpected(Exception):  # noqa: N818 - a verdict, not a fault
    """Speech in a language the folder does not take, and no rule routes it."""

    def __init__(self, heard: language.Heard, taken: frozenset[str]) -> None:
        self.heard = heard
        self.taken = taken
        super().__init__(
            f"language.unexpected: {heard.language} heard (probability"
            f" {heard.probability:.2f}); the folder takes {', '.join(sorted(taken))}"
        )


def settled(
    job: Job, uploader: Uploader, ledger: Heard, track: int | None = None
) -> FolderSettings:
    """``job``'s settings once its language is known: detected where the folder asks
    for it (in audio track ``track``; None: the file's first, unless the folder chooses
    tracks: then each is heard on its own), then the rules by language applied
    (Unexpected when none takes it)."""
    settings, inbox = job.settings, job.inbox
    if track is None and not choosing.default(settings.audio_track):
        return settings  # jobs/tracks.py hears each chosen track
    routed = frozenset(code for layer in inbox.layers for code in layer.language)
    if not settings.detect:
        if settings.language and routed:  # a forced language routes as a detected one
            return rules.effective(inbox, job.path, settings.language)
        if not routed:
            return settings
    taken = frozenset(settings.languages) | routed if settings.languages else None
    endpoint = uploader.client(settings.endpoint).endpoint
    if uploader.caps(settings.endpoint, settings.model).listed and not routed:
        return settings  # gpt-transcribe detects among languages[] itself
    name = settings.language_model or (settings.model if endpoint.kind == "local" else None)
    found = _heard(name, job, track or 0, ledger) if name else None
    if found is None:
        log.info("language.undetected", reason="no multilingual model to detect with", model=name)
        return settings
    probabilities, remembered = found
    heard = language.pick(probabilities, taken)
    log.info(
        "language.detected",
        language=heard.language,
        probability=round(heard.probability, 3),
        among=sorted(taken) if taken else "all",
        model=name,
        track=track or 0,
        remembered=remembered,
    )
    if heard.language is None:  # no speech: nothing to route by
        return settings
    if heard.unexpected:
        log.warning(
            "language.unexpected",
            language=heard.language,
            probability=round(heard.probability, 3),
            languages=sorted(taken or ()),
        )
        raise Unexpected(heard, taken or frozenset())
    chosen = rules.effective(inbox, job.path, heard.language)
    return chosen.model_copy(update={"language": heard.language})


def _heard(name: str, job: Job, track: int, ledger: Heard) -> tuple[Found, bool] | None:
    """The languages model ``name`` hears at the start of audio track ``track`` of the
    job's recording, and whether the ledger remembered them (heard before, by the same
    detector); None when the model knows English only."""
    from dropscribe.timing import whisper  # noqa: PLC0415 - numpy, av: for detecting only

    if detect.english_only(name):
        return None
    held, key = job.known()
    detector = f"{detect.WAY} {name}"
    if (kept := ledger.heard(key.digest, track, detector)) is not None:
        return kept, True
    audio = detect.lead(held.content, track)
    model, turn = whisper.model(name)
    with turn:
        found = detect.probabilities(model, audio)
    if found is None:
        return None
    try:
        ledger.record_heard(key.digest, track, detector, found)
    except WRITE_FAILED as exc:  # heard again at the next rescan, no more
        log.warning("ledger.write_failed", error=str(exc), will_retry=True)
    return found, False


def believed(settings: FolderSettings, answer: Transcript) -> Transcript:
    """``answer``, unless its language lies outside the folder's list though none was
    detected beforehand (PermanentError: sent again, it would cost again)."""
    if not settings.languages or settings.language:
        return answer
    said = language.code_of(answer.language)
    if said is None or said in settings.languages:
        return answer
    raise PermanentError(
        f"language.unexpected: the answer is in {said}; the folder takes"
        f" {', '.join(settings.languages)} (add it to language:, or a rule"
        f" match: {{language: {said}}}; then dropscribe retry)"
    )

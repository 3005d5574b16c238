"""The config file loaded for the daemon: ``config.settings.load`` with the checks that
need the engines' knowledge (speakers:, voices: and task: against what each endpoint
kind and model can do; a voices: folder's clips read), every problem still told at once
with its file and line; the secrets it read blanked in every log line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dropscribe.audio import voices
from dropscribe.config import settings
from dropscribe.errors import PermanentError
from dropscribe.ops import log
from dropscribe.transcribe import english, kinds, models
from dropscribe.vocab.config import Config
from dropscribe.vocab.settings import SpeakerCount, Task

if TYPE_CHECKING:
    import os

    from dropscribe.config.locate import KeyPath
    from dropscribe.config.settings import Report
    from dropscribe.vocab.endpoints import Endpoint

__all__ = ["Config", "level", "load", "speakers"]  # Config: what load returns

# The answers a transcript is read from (srt and vtt answers are never asked for).
READABLE = frozenset({"json", "verbose_json", "diarized_json", "text"})

LOCAL_WHY = (
    "kind: local cannot label speakers: pyannote, the open diarization model, takes hours"
    " per hour of audio on a CPU and its models must be downloaded with a Hugging Face"
    " token; use an endpoint that labels speakers (gpt-4o-transcribe-diarize, kind:"
    " mistral, together or asr)"
)


def speakers(endpoint: Endpoint, values: dict[str, Any], where: KeyPath, problem: Report) -> None:
    """Report what the endpoint cannot do of a level's speakers: and voices:."""
    said = values.get("speakers")
    model = values.get("model", "")
    if said:
        if endpoint.kind == "local":
            problem((*where, "speakers"), LOCAL_WHY)
        elif endpoint.kind not in kinds.SPEAKING:
            problem(
                (*where, "speakers"),
                f"endpoint {endpoint.name!r} (kind: {endpoint.kind}) gives no speaker labels;"
                " use gpt-4o-transcribe-diarize, or kind: mistral, together or asr",
            )
        elif endpoint.kind in models.OPENAI_SHAPED and (
            models.of(endpoint, model).timed != "diarized_json"
        ):
            problem(
                (*where, "speakers"),
                f"model {model!r} gives no speaker labels; use gpt-4o-transcribe-diarize",
            )
        elif isinstance(said, SpeakerCount) and endpoint.kind not in kinds.COUNTED:
            problem(
                (*where, "speakers"),
                f"endpoint {endpoint.name!r} (kind: {endpoint.kind}) takes no speaker count;"
                " say speakers: true",
            )
    folder = values.get("voices")
    if folder is None:
        return
    if not said:
        problem((*where, "voices"), "voices: needs speakers: (known voices label speakers)")
    elif endpoint.kind not in kinds.KNOWN_VOICES:
        problem(
            (*where, "voices"),
            f"endpoint {endpoint.name!r} (kind: {endpoint.kind}) takes no known voices;"
            " OpenAI's gpt-4o-transcribe-diarize does",
        )
    try:
        voices.clips(Path(folder))
    except PermanentError as exc:
        problem((*where, "voices"), str(exc))


def english_only(model: str, values: dict[str, Any], where: KeyPath, problem: Report) -> None:
    """Refuse a non-English ``language`` or ``task: translate`` for an English-only local
    model (``*.en``): it writes English-sounding nonsense for other speech, or nothing."""
    if not english.english_only(model):  # a folder by its vocabulary, a name by .en
        return
    fix = "use a multilingual model (model: base, small, or any name without .en)"
    language = values.get("language")
    others = [c for c in values.get("languages", ()) if not english.english(c)]
    if values.get("detect") and not values.get("languages"):
        others = ["auto"]
    if others:  # issue 32: a list or auto needs a model that can tell languages apart
        problem(
            (*where, "language"),
            f"model {model!r} knows English only and cannot detect or transcribe"
            f" {', '.join(others)}; {fix}",
        )
    elif not english.english(language):
        problem(
            (*where, "language"),
            f"model {model!r} knows English only and cannot transcribe {language!r};"
            f" {fix}, or language: en",
        )
    if values.get("task") is Task.TRANSLATE:
        problem(
            (*where, "task"),
            f"model {model!r} knows English only and cannot translate; {fix}, or task: transcribe",
        )


def level(endpoint: Endpoint, values: dict[str, Any], where: KeyPath, problem: Report) -> None:
    """Refuse what no request to the model can do: speaker labels from an endpoint that
    gives none (``speakers``), a translation by a model that only transcribes (on
    OpenAI, translations are whisper-1's alone)."""
    speakers(endpoint, values, where, problem)
    model = values.get("model", "")
    if endpoint.kind == "local":
        english_only(model, values, where, problem)
        return
    if values.get("task") is Task.TRANSLATE and not models.of(endpoint, model).translate:
        problem((*where, "task"), models.cannot_translate(endpoint, model))
    formats = models.of(endpoint, model).formats
    if model and formats and not READABLE & set(formats):
        problem(
            (*where, "model"),
            f"model {model!r} on endpoint {endpoint.name!r} is said to answer only"
            f" {', '.join(formats)}, which dropscribe cannot read a transcript from; add"
            f" json or text to endpoints.{endpoint.name}.models.{model}.formats",
        )


def load(
    path: str | os.PathLike[str], environ: dict[str, str] | None = None, *, keys: bool = True
) -> Config:
    """``settings.load`` with ``level`` checked at each level; the API keys and the
    ledger's password it read are never printed after (``log.hide``)."""
    config = settings.load(path, environ, keys=keys, check=level)
    log.hide(*(endpoint.api_key for endpoint in config.endpoints.values()))
    if config.ledger is not None and config.ledger.password:
        log.hide(config.ledger.password)
    return config

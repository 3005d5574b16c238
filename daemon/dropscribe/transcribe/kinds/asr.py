"""whisper-asr-webservice (the usual WhisperX container): options in the query string,
the audio in a field of its own name (PROTOCOL.md 6.2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe.transcribe.kinds.base import Fields, Kind, Shape
from dropscribe.transcribe.kinds.form import counts, prompt_with_vocabulary

if TYPE_CHECKING:
    from dropscribe.transcribe.models import Ask
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings


def _shape(
    endpoint: Endpoint,
    settings: FolderSettings,
    ask: Ask,  # noqa: ARG001 - every kind's shape takes the same
    fields: Fields,  # noqa: ARG001
    route: str,  # noqa: ARG001
) -> Shape:
    params = {"output": "json", "task": settings.task.value, "word_timestamps": "true"}
    params["vad_filter"] = "true"
    if settings.language:
        params["language"] = settings.language
    if prompt := prompt_with_vocabulary(settings):
        params["initial_prompt"] = prompt
    if settings.speakers:
        params |= {"diarize": "true", **counts(settings)}
    return Shape(endpoint.request_path or "asr", {}, params, file_field="audio_file")


KIND = Kind(
    "asr",
    _shape,
    unsent=frozenset({"response_format", "chunking_strategy"}),
    speaking=True,
    counted=True,
)

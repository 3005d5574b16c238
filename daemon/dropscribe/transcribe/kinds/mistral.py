"""Mistral (Voxtral): no response_format and no prompt, the prompt's words are
context_bias; segment times only, Voxtral 3 refuses word times (PROTOCOL.md 6.2, 7.3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe.transcribe.kinds.base import Fields, Kind, Shape
from dropscribe.transcribe.kinds.form import context_bias

if TYPE_CHECKING:
    from dropscribe.transcribe.models import Ask
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings


def _shape(
    endpoint: Endpoint,
    settings: FolderSettings,
    ask: Ask,
    fields: Fields,  # noqa: ARG001 - its own form, not OpenAI's
    route: str,  # noqa: ARG001
) -> Shape:
    out: Fields = {"model": settings.model}
    if settings.language and ask.language:
        out["language"] = settings.language
    if settings.temperature is not None:
        out["temperature"] = f"{settings.temperature:g}"
    if ask.granularities:
        out["timestamp_granularities"] = "segment"
    if settings.speakers:
        out["diarize"] = "true"
    if bias := context_bias(settings.prompt, settings.vocabulary):
        out["context_bias"] = bias
    return Shape(endpoint.request_path or "audio/transcriptions", out)


KIND = Kind(
    "mistral",
    _shape,
    unsent=frozenset({"response_format", "prompt", "chunking_strategy"}),
    speaking=True,
)

"""whisper.cpp's server: /inference, no model field, its language default is en (so
say auto); miniaudio reads wav, mp3 and flac (without --convert), and no Opus."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe.transcribe.kinds.base import Fields, Kind, Shape
from dropscribe.vocab.settings import Task

if TYPE_CHECKING:
    from dropscribe.transcribe.models import Ask
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings


def _shape(
    endpoint: Endpoint,
    settings: FolderSettings,
    ask: Ask,  # noqa: ARG001 - every kind's shape takes the same
    fields: Fields,
    route: str,  # noqa: ARG001
) -> Shape:
    fields.pop("model")
    fields.pop("timestamp_granularities[]", None)
    fields["language"] = settings.language or "auto"
    if settings.task is Task.TRANSLATE:
        fields["translate"] = "true"
    return Shape(endpoint.request_path or "inference", fields)


KIND = Kind("whispercpp", _shape, accepted=frozenset({"wav", "mp3", "flac"}), codec="mp3")

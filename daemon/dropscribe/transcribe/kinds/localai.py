"""LocalAI: no /translations route, a form flag on the transcription route instead."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe.transcribe.kinds.base import HEADROOM, MIB, Fields, Kind, Shape
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
    if settings.task is Task.TRANSLATE:
        fields["translate"] = "true"
    return Shape(endpoint.request_path or "audio/transcriptions", fields)


KIND = Kind("localai", _shape, upload_limit=15 * MIB - HEADROOM)  # LOCALAI_UPLOAD_LIMIT

"""Together: the OpenAI form plus ``diarize`` and the speaker counts (PROTOCOL.md 6.2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe.transcribe.kinds.base import Fields, Kind, Shape
from dropscribe.transcribe.kinds.form import counts

if TYPE_CHECKING:
    from dropscribe.transcribe.models import Ask
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings


def _shape(
    endpoint: Endpoint,
    settings: FolderSettings,
    ask: Ask,  # noqa: ARG001 - every kind's shape takes the same
    fields: Fields,
    route: str,
) -> Shape:
    if settings.speakers:
        fields |= {"diarize": "true", **counts(settings)}
    return Shape(endpoint.request_path or route, fields)


KIND = Kind("together", _shape, speaking=True, counted=True)

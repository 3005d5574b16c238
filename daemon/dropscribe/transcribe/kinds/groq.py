"""Groq: the OpenAI form; its translations accept only ``language=en``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe.transcribe.kinds.base import HEADROOM, MIB, SEED_FORMATS, Fields, Kind, Shape
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
    route: str,
) -> Shape:
    if settings.task is Task.TRANSLATE:
        fields["language"] = "en"
    return Shape(endpoint.request_path or route, fields)


KIND = Kind(
    "groq",
    _shape,
    upload_limit=25 * MIB - HEADROOM,  # the free tier; the dev tier allows 100 MB
    accepted=SEED_FORMATS,
)

"""What every kind is made of (``Kind``), and the request it shapes (``Shape``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from dropscribe.transcribe.models import Ask
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings

MIB = 1024 * 1024
HEADROOM = 256 * 1024  # multipart framing and form fields, inside the request limit
# The file types OpenAI takes as they are (by extension).
SEED_FORMATS = frozenset({"flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "oga", "wav", "webm"})

Fields = dict[str, str | list[str]]  # a list: the field repeated (known_speaker_names[])


@dataclass(frozen=True)
class Shape:
    """One request: where it goes, with which query, headers and form fields."""

    path: str
    fields: Fields
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    file_field: str = "file"  # the multipart name of the audio (whisper-asr-webservice: audio_file)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def as_openai(
    endpoint: Endpoint,
    settings: FolderSettings,  # noqa: ARG001 - every kind's shape takes the same
    ask: Ask,  # noqa: ARG001
    fields: Fields,
    route: str,
) -> Shape:
    """The OpenAI form (``fields``) on the task's route, or the configured path."""
    return Shape(endpoint.request_path or route, fields)


@dataclass(frozen=True)
class Kind:
    """One kind of endpoint: the policy of its requests, apart from sending them.

    ``shape`` gets the OpenAI form already made for the settings (``form.py``) and the
    task's OpenAI route, and returns the request this kind wants instead."""

    name: str
    shape: Callable[[Endpoint, FolderSettings, Ask, Fields, str], Shape] = as_openai
    upload_limit: int | None = None  # the largest audio file, when the config says none
    accepted: frozenset[str] | None = None  # taken as they are; None: whatever FFmpeg reads
    codec: str = "opus"  # what re-encoded audio is sent as
    auth: Callable[[str], dict[str, str]] = bearer
    unsent: frozenset[str] = frozenset()  # choices it never gets (refusals naming them)
    speaking: bool = False  # its answers can say who speaks
    counted: bool = False  # it takes min_speakers / max_speakers
    known_voices: bool = False  # known_speaker_names[] + known_speaker_references[]
    models_path: str = "models"  # its model listing (the deprecation radar)

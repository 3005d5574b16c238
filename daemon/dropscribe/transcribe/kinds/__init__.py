"""Pure: how each kind of endpoint wants a request shaped (PROTOCOL.md sections 4, 6, 7).

One module in this folder per kind, named as the config names it, holding its ``KIND``
(``base.Kind``: the form it takes, its upload limit, the files it takes as they are,
how it is told the key, the fields it never gets, whether it says who speaks). A new
kind is one file here plus its name in ``vocab/endpoints.py``'s ``kind:`` (a test holds
the two lists together). Sending is ``http.py``'s; what an answer means, ``answers.py``'s.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from dropscribe.transcribe.kinds.base import HEADROOM, MIB, SEED_FORMATS, Kind, Shape
from dropscribe.transcribe.kinds.form import context_bias, openai_fields, prompt_with_vocabulary
from dropscribe.vocab.settings import Task

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dropscribe.audio.voices import Voice
    from dropscribe.transcribe.models import Ask
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings

__all__ = [
    "HEADROOM",
    "KINDS",
    "MIB",
    "SEED_FORMATS",
    "Kind",
    "Shape",
    "context_bias",
    "openai_fields",
    "prompt_with_vocabulary",
]

_NOT_KINDS = {"base", "form"}  # this folder's shared pieces


def _found() -> dict[str, Kind]:
    """Every kind in this folder, by name (its module's)."""
    kinds: dict[str, Kind] = {}
    for module in pkgutil.iter_modules(__path__):
        if module.name not in _NOT_KINDS:
            kind: Kind = importlib.import_module(f"{__name__}.{module.name}").KIND
            kinds[kind.name] = kind
    return kinds


KINDS = _found()
FALLBACK = KINDS["openai"]  # the shape every OpenAI-compatible server takes

# The kinds whose answers can say who speaks (PROTOCOL.md sections 6.1 and 6.2); on the
# OpenAI-shaped ones only with a diarizing model. min/max counts: together and asr only.
SPEAKING = {name for name, kind in KINDS.items() if kind.speaking}
COUNTED = {name for name, kind in KINDS.items() if kind.counted}
KNOWN_VOICES = {name for name, kind in KINDS.items() if kind.known_voices}
# Choices a kind never sends as such: a refusal naming one is not about this request,
# and is not learned (Mistral takes no response_format or prompt; asr gets output=json).
UNSENT = {name: set(kind.unsent) for name, kind in KINDS.items() if kind.unsent}


def of(endpoint: Endpoint) -> Kind:
    return KINDS.get(endpoint.kind, FALLBACK)


def upload_limit(endpoint: Endpoint) -> int | None:
    """Bytes one upload may carry; None for no limit (``max_upload_bytes: 0``)."""
    if endpoint.max_upload_bytes is not None:
        return endpoint.max_upload_bytes or None
    return of(endpoint).upload_limit


def accepts(endpoint: Endpoint, extension: str) -> bool:
    """Whether the endpoint takes a file of this type as it is."""
    formats = of(endpoint).accepted
    return formats is None or extension.lower() in formats


def audio_codec(endpoint: Endpoint) -> str:
    return endpoint.audio_codec or of(endpoint).codec


def auth_headers(endpoint: Endpoint) -> dict[str, str]:
    if not endpoint.api_key:
        return {}
    return of(endpoint).auth(endpoint.api_key)


def shape(
    endpoint: Endpoint, settings: FolderSettings, ask: Ask, voices: Sequence[Voice] = ()
) -> Shape:
    """The request for one file with these settings on this endpoint; ``voices`` are
    known speakers (name and a data URL of a clip), for the kinds that take them."""
    kind = of(endpoint)
    fields = openai_fields(settings, ask)
    if voices and kind.known_voices:
        fields["known_speaker_names[]"] = [v.name for v in voices]
        fields["known_speaker_references[]"] = [v.data_url for v in voices]
    route = "audio/translations" if settings.task is Task.TRANSLATE else "audio/transcriptions"
    return kind.shape(endpoint, settings, ask, fields, route)

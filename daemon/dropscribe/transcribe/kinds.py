"""Pure: how each kind of endpoint wants a request shaped (PROTOCOL.md section 4).

Everything the servers agree on stays in ``http.py``; the differences live here,
one small function per kind, so that supporting a new server is a few lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dropscribe.config.settings import Task

if TYPE_CHECKING:
    from dropscribe.config.schema import FolderSettings
    from dropscribe.config.settings import Endpoint
    from dropscribe.transcribe.models import Ask

KINDS = ("openai", "azure", "groq", "speaches", "localai", "vllm", "whispercpp", "gateway")

MIB = 1024 * 1024
HEADROOM = 256 * 1024  # multipart framing and form fields, inside the request limit

# The largest audio file each kind accepts in one request, when the config does not say.
UPLOAD_LIMITS = {
    "openai": 25 * MIB - HEADROOM,  # 26,214,400 bytes of request body
    "azure": 25 * MIB - HEADROOM,
    "groq": 25 * MIB - HEADROOM,  # the free tier; the dev tier allows 100 MB
    "localai": 15 * MIB - HEADROOM,  # LOCALAI_UPLOAD_LIMIT's default
    "vllm": 25 * MIB - HEADROOM,  # VLLM_MAX_AUDIO_CLIP_FILESIZE_MB's default
    "gateway": 25 * MIB - HEADROOM,  # usually fronting OpenAI
}


# The file types each kind takes as they are (by extension); None: whatever FFmpeg reads.
SEED_FORMATS = frozenset({"flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "oga", "wav", "webm"})
ACCEPTED: dict[str, frozenset[str] | None] = {
    "openai": SEED_FORMATS,
    "azure": SEED_FORMATS,
    "groq": SEED_FORMATS,
    "gateway": SEED_FORMATS,
    "whispercpp": frozenset({"wav", "mp3", "flac"}),  # miniaudio, without --convert
}

# What re-encoded audio is sent as: whisper.cpp's decoders know no Opus.
DEFAULT_CODEC = {"whispercpp": "mp3"}


@dataclass(frozen=True)
class Shape:
    """One request: where it goes, with which query, headers and form fields."""

    path: str
    fields: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def upload_limit(endpoint: Endpoint) -> int | None:
    """Bytes one upload may carry; None for no limit (``max_upload_bytes: 0``)."""
    if endpoint.max_upload_bytes is not None:
        return endpoint.max_upload_bytes or None
    return UPLOAD_LIMITS.get(endpoint.kind)


def accepts(endpoint: Endpoint, extension: str) -> bool:
    """Whether the endpoint takes a file of this type as it is."""
    formats = ACCEPTED.get(endpoint.kind)
    return formats is None or extension.lower() in formats


def audio_codec(endpoint: Endpoint) -> str:
    return endpoint.audio_codec or DEFAULT_CODEC.get(endpoint.kind, "opus")


def auth_headers(endpoint: Endpoint) -> dict[str, str]:
    if not endpoint.api_key:
        return {}
    if endpoint.kind == "azure":
        return {"api-key": endpoint.api_key}
    return {"Authorization": f"Bearer {endpoint.api_key}"}


def openai_fields(settings: FolderSettings, ask: Ask) -> dict[str, str]:
    """The OpenAI form: what the model takes (``ask``); unset settings left to the server."""
    fields = {"model": settings.model, "response_format": ask.response_format}
    if ask.granularities:
        fields["timestamp_granularities[]"] = "segment"
    if settings.language and settings.task is Task.TRANSCRIBE:
        fields["language"] = settings.language
    if settings.prompt and ask.prompt:
        fields["prompt"] = settings.prompt
    if ask.chunking:
        fields["chunking_strategy"] = "auto"  # the bare string: the object form was refused
    if settings.temperature is not None:
        fields["temperature"] = f"{settings.temperature:g}"
    return fields


def shape(endpoint: Endpoint, settings: FolderSettings, ask: Ask) -> Shape:
    """The request for one file with these settings on this endpoint."""
    route = "audio/translations" if settings.task is Task.TRANSLATE else "audio/transcriptions"
    fields = openai_fields(settings, ask)
    translate = settings.task is Task.TRANSLATE
    match endpoint.kind:
        case "azure":
            # Classic: the deployment in the path, api-version in the query. v1: like OpenAI.
            if endpoint.api_version == "v1":
                return Shape(f"openai/v1/{route}", fields)
            del fields["model"]
            return Shape(
                f"openai/deployments/{settings.model}/{route}",
                fields,
                params={"api-version": endpoint.api_version},
            )
        case "groq":
            if translate:
                fields["language"] = "en"  # Groq's translations accept only en
            return Shape(route, fields)
        case "localai":
            # No /translations route: a form flag on the transcription route instead.
            if translate:
                fields["translate"] = "true"
            return Shape(endpoint.request_path or "audio/transcriptions", fields)
        case "whispercpp":
            # /inference by default; the server's language default is en, so say auto.
            fields.pop("model")
            fields.pop("timestamp_granularities[]", None)
            fields["language"] = settings.language or "auto"
            if translate:
                fields["translate"] = "true"
            return Shape(endpoint.request_path or "inference", fields)
        case _:
            return Shape(endpoint.request_path or route, fields)
